#!/usr/bin/env python3
"""How accurate is `localcodex bench` itself? Run it against the Ollama emulator generating at known rates and
print what it reported next to the truth.

The emulator (`scripts/ollama-emulator`) runs in its own process, so this process's threads and GIL cannot skew
its clock. Its schedule is exact: prompt processing takes prompt_eval_count / prompt_rate, output token i leaves
at prefill end + i / decode_rate, and it reports those durations in its counters. So the truth is known for every
run:

* decode tok/s = decode_rate (from the counters, and from token arrival times on the client: `stream_tps`)
* prompt tok/s = prompt_rate
* TTFT of a warm run = prompt_eval_count / prompt_rate (the first token leaves when prefill ends)
* cold load = load_time, and the warm-up's TTFT = load_time + its prefill

Pass criteria (the issue's): decode and prompt rates within 1 %, TTFT within 5 ms. Exit code 1 on any miss.

    python scripts/bench_accuracy.py            # the full grid: decode 5/40/400, prompt 50/2000 tok/s
    python scripts/bench_accuracy.py --quick    # decode 40/400, prompt 2000 only
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from localcodex.core.bench.run import BenchReport, BenchRequest, RunResult, bench  # noqa: E402
from localcodex.invocation import Invocation  # noqa: E402
from localcodex.wiring import Live  # noqa: E402

MODEL = "qwen3-coder:30b"  # installed by the emulator's demo preset
LOAD_TIME = 0.75
RATE_TOLERANCE = 0.01
TTFT_TOLERANCE_S = 0.005

@dataclass(frozen=True)
class Config:
    decode: float
    prompt: float
    prompt_tokens: tuple[int, ...]
    num_predict: int


def grid(quick: bool) -> list[Config]:
    configs = []
    for decode in ((40.0, 400.0) if quick else (5.0, 40.0, 400.0)):
        num_predict = int(min(400, max(10, decode * 1.0)))  # about one second of decoding per run
        for prompt in ((2000.0,) if quick else (50.0, 2000.0)):
            sizes = (0, 4096) if prompt >= 1000 else (0, 200)  # a few seconds of prefill at most
            configs.append(Config(decode, prompt, sizes, num_predict))
    return configs


class EmulatorProcess:
    """`scripts/ollama-emulator` on a free port, with the demo models installed, at the config's rates."""

    def __init__(self, config: Config) -> None:
        args = [sys.executable, str(REPO / "scripts" / "ollama-emulator"), "--port", "0", "--preset", "demo",
                "--decode-rate", str(config.decode), "--prompt-rate", str(config.prompt),
                "--load-time", str(LOAD_TIME)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        match = re.search(r"on (http://\S+) ", line)
        if not match:
            self.proc.kill()
            raise SystemExit(f"the emulator did not start: {line!r}")
        self.url = match.group(1)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


@dataclass(frozen=True)
class Row:
    config: str
    measure: str
    truth: float
    reported: float
    unit: str
    ok: bool

    @property
    def error(self) -> str:
        if self.unit == "ms":
            return f"{self.reported - self.truth:+.2f} ms"
        return f"{(self.reported / self.truth - 1) * 100:+.3f} %"


def _rate_row(label: str, measure: str, truth: float, values: list[float]) -> Row:
    reported = statistics.median(values)
    return Row(label, measure, truth, reported, "tok/s", abs(reported / truth - 1) <= RATE_TOLERANCE)


def _ms_row(label: str, measure: str, truth_s: float, values_s: list[float]) -> Row:
    reported, truth = statistics.median(values_s) * 1000, truth_s * 1000
    return Row(label, measure, truth, reported, "ms", abs(reported - truth) <= TTFT_TOLERANCE_S * 1000)


def check(config: Config, report: BenchReport, api: str) -> list[Row]:
    label = f"{api} d{config.decode:g} p{config.prompt:g}"
    rows: list[Row] = []
    measured = [r for r in report.runs if r.phase == "measure" and r.ok]
    if len(measured) != sum(s.runs_ok for s in report.series) or not measured:
        raise SystemExit(f"{label}: no measured runs ({report.failures})")
    for size in sorted({r.prompt_target for r in measured}):
        runs = [r for r in measured if r.prompt_target == size]
        tokens = runs[0].prompt_eval_count or 0
        where = f"{label} {tokens} tok"
        if api == "ollama":
            rows.append(_rate_row(where, "decode (server counters)", config.decode, [r.decode_tps for r in runs]))
            rows.append(_rate_row(where, "prompt (server counters)", config.prompt, [r.prompt_tps for r in runs]))
        rows.append(_rate_row(where, "decode (token arrivals)", config.decode, [r.stream_tps for r in runs]))
        rows.append(_ms_row(where, "TTFT (wall)", _ttft_truth(runs[0], config.prompt), [r.ttft_s for r in runs]))
    warm = report.models[0].warmup
    if api == "ollama" and warm is not None and warm.load_duration:
        rows.append(_ms_row(f"{label} warm-up", "load (server)", LOAD_TIME, [warm.load_duration / 1e9]))
        rows.append(_ms_row(f"{label} warm-up", "cold TTFT (wall)", LOAD_TIME + _ttft_truth(warm, config.prompt),
                            [warm.ttft_s or 0.0]))
    return rows


def _ttft_truth(run: RunResult, prompt_rate: float) -> float:
    return (run.prompt_eval_count or 0) / prompt_rate


def run_config(config: Config, api: str) -> list[Row]:
    emu = EmulatorProcess(config)
    try:
        request = BenchRequest(models=(MODEL,), prompt_tokens=config.prompt_tokens, num_predict=config.num_predict,
                               host=emu.url if api == "ollama" else None,
                               base_url=f"{emu.url}/v1" if api == "openai" else None)
        endpoint = Live(Invocation.build(env={})).bench_endpoint(request)
        return check(config, bench(request, endpoint=endpoint), api)
    finally:
        emu.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid (about a minute)")
    args = parser.parse_args()
    started = time.perf_counter()
    rows: list[Row] = []
    for config in grid(args.quick):
        for api in ("ollama", "openai"):
            rows += run_config(config, api)
            print(f"  done: {api} decode {config.decode:g} prompt {config.prompt:g}", file=sys.stderr)
    width = max(len(r.config) for r in rows)
    print(f"{'config':<{width}}  {'measure':<26} {'truth':>10} {'reported':>10} {'unit':<5} {'error':>11}  ok")
    for r in rows:
        print(f"{r.config:<{width}}  {r.measure:<26} {r.truth:>10.2f} {r.reported:>10.2f} {r.unit:<5} "
              f"{r.error:>11}  {'yes' if r.ok else 'NO'}")
    worst_rate = max((abs(r.reported / r.truth - 1) for r in rows if r.unit == "tok/s"), default=0.0)
    worst_ms = max((abs(r.reported - r.truth) for r in rows if r.unit == "ms"), default=0.0)
    failed = [r for r in rows if not r.ok]
    print(f"\nworst rate error {worst_rate * 100:.3f} % (limit 1 %), worst time error {worst_ms:.2f} ms (limit 5 ms); "
          f"{len(rows) - len(failed)}/{len(rows)} within limits; {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""How fast `localcodex check` reaches a verdict, and how tightly it keeps its time limits.

Runs against the Ollama emulator (tests/emulator) on loopback and prints medians:

* a full check of a good model at the emulator's fast rates (the toolkit's own overhead) and at realistic rates
  (40 tokens/s decode, 2,000 tokens/s prompt, 0.2 s load: where the time of a real check goes, per probe);
* the time to a verdict when nothing listens (connection refused);
* a stalled server: the responses probe's duration divided by `--timeout` (1.0 = the limit held exactly),
  for a stall before the answer and a stall in the middle of a stream (only the deadline watchdog stops that).

    python scripts/bench_check.py [--runs 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from emulator import Emulator, Fault, preset_models  # noqa: E402

from localcodex.core.check.run import CheckReport, CheckRequest, check  # noqa: E402
from localcodex.wiring import live  # noqa: E402

FAST = {"decode_rate": 2000.0, "prompt_rate": 100000.0, "load_time": 0.0, "pull_rate": 2e11}
REALISTIC = {"decode_rate": 40.0, "prompt_rate": 2000.0, "load_time": 0.2}


def good_model():
    model = next(m for m in preset_models() if m.name == "qwen3.5:27b")
    return dataclasses.replace(model, parameters={**model.parameters, "num_ctx": 65536})


def start(**rates: float) -> Emulator:
    return Emulator(models_dir=tempfile.mkdtemp(prefix="bench-check-"), installed=[good_model()], **rates).start()


def timed(req: CheckRequest) -> tuple[float, CheckReport]:
    started = time.perf_counter()
    report = check(req, live(req.host))
    return time.perf_counter() - started, report


def dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def full_check(rates: dict[str, float], runs: int, label: str) -> None:
    emu = start(**rates)
    try:
        results = [timed(CheckRequest(model="qwen3.5:27b", host=emu.url)) for _ in range(runs)]
    finally:
        emu.stop()
    walls = [wall for wall, _ in results]
    assert all(r.ok for _, r in results), "the good model should pass"
    print(f"full check, {label}: median {statistics.median(walls):.3f} s (min {min(walls):.3f}, "
          f"max {max(walls):.3f}, n={runs})")
    for name in ("responses", "tools", "context", "chat"):
        per = [r.probe(name).duration_s for _, r in results]
        print(f"    {name:<10} median {statistics.median(per):.3f} s")


def refused(runs: int) -> None:
    walls = [timed(CheckRequest(model="m", host=dead_url()))[0] for _ in range(runs)]
    print(f"verdict on a refused connection: median {statistics.median(walls) * 1000:.1f} ms (n={runs})")


def stall_ratio(path: str, after: int, probe: str, runs: int, limit: float = 1.0) -> None:
    emu = start(**FAST)
    ratios = []
    try:
        for _ in range(runs):
            emu.inject(Fault("stall", path=path, after=after, seconds=120))
            _, report = timed(CheckRequest(model="qwen3.5:27b", host=emu.url, timeout=limit))
            emu.clear_faults()
            ratios.append(report.probe(probe).duration_s / limit)
    finally:
        emu.stop()
    print(f"stall on {path} after {after} chunks, --timeout {limit:g}: {probe} probe took "
          f"median {statistics.median(ratios):.3f}x the limit (max {max(ratios):.3f}x, n={runs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    full_check(FAST, args.runs, "emulator at fast rates (toolkit overhead)")
    full_check(REALISTIC, max(1, args.runs // 3), "emulator at realistic rates")
    refused(args.runs)
    stall_ratio("/v1/responses", 0, "responses", args.runs)
    stall_ratio("/v1/chat/completions", 2, "chat", args.runs)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: what watching a 20 GB pull costs the client.

The emulator (tests/emulator) runs in a process of its own and serves a 20 GB model at `--rate` bytes/s
(default: 2 GB/s, so the pull takes ~10 s and sends ~170 progress lines of 60 ms). The client is the real
`localcodex pull` code path (`localcodex.cli.main`) in a second process:

- `tty`: on a pseudo-terminal, so the rich live display (one bar per layer) is what runs;
- `plain`: with stderr piped, the line-by-line form.

Figures: client CPU seconds spent in the pull (`time.process_time`, every thread, imports excluded) against
wall seconds, as "% of one core" (target < 5 %); CPU of the whole client process including interpreter
start-up and imports (`wait4` rusage); and for the live display, how often the screen was redrawn (the
cadence a person sees: median and worst gap between redraws).

    python scripts/bench_pull.py [--size 20e9] [--rate 2e9] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = "bench-20g:latest"

EMULATOR = """
import sys, time
sys.path.insert(0, {tests!r})
from emulator import Emulator, FakeModel
model = FakeModel(name={model!r}, size=int({size}), parameter_count=32_000_000_000, parameter_size="32B")
emu = Emulator(models_dir={models!r}, registry=[model], pull_rate={rate}).start()
print(emu.url, flush=True)
sys.stdin.read()
emu.stop()
"""

CHILD = """
import json, os, sys, time
sys.path.insert(0, {repo!r})
import httpx, ollama, rich.progress  # imports are not what this measures
import localcodex.cli, localcodex.core.pull, localcodex.render.progress, localcodex.adapters.registry
from localcodex.cli import main
cpu0, wall0 = time.process_time(), time.monotonic()
code = 0
try:
    main(["pull", {model!r}, "--host", {url!r}, "--force"])
except SystemExit as exc:
    code = int(exc.code or 0)
cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
with open({result!r}, "w") as fh:
    json.dump({{"cpu": cpu, "wall": wall, "code": code}}, fh)
"""


def start_emulator(size: float, rate: float, models: str) -> tuple[subprocess.Popen, str]:
    code = EMULATOR.format(tests=str(REPO / "tests"), model=MODEL, size=size, rate=rate, models=models)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def child_env(models: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(REPO), "OLLAMA_MODELS": models, "COLUMNS": "120", "LINES": "40",
        "LOCALCODEX_REGISTRY": "http://127.0.0.1:9",  # no registry look-up: only the pull is measured
        "TERM": env.get("TERM") or "xterm-256color",
    })
    env.pop("NO_COLOR", None)
    return env


def run_client(url: str, mode: str, models: str) -> dict[str, float]:
    """One pull through the CLI; returns the child's own figures plus rusage and redraw times."""
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "result.json")
        code = CHILD.format(repo=str(REPO), model=MODEL, url=url, result=result)
        argv = [sys.executable, "-c", code]
        redraws: list[float] = []
        if mode == "tty":
            master, slave = pty.openpty()
            proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=child_env(models))
            os.close(slave)
            redraws = _drain(master, proc)
            os.close(master)
        else:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=child_env(models))
            _out, err = proc.communicate()
            redraws = [0.0] * err.count(b"\n")
        _pid, _status, usage = os.wait4(proc.pid, 0) if proc.returncode is None else (0, 0, None)
        figures = json.loads(Path(result).read_text())
    if usage is not None:
        figures["process_cpu"] = usage.ru_utime + usage.ru_stime
    figures["redraws"] = redraws
    return figures


def _drain(master: int, proc: subprocess.Popen) -> list[float]:
    """Read the terminal until the child exits; note when each screen redraw (cursor moved up) arrived."""
    stamps: list[float] = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            if b"\x1b[" in data and (b"A" in data or b"\x1b[2K" in data):
                stamps.append(time.monotonic())
        elif proc.poll() is not None:
            break
    return stamps


def summarize(mode: str, runs: list[dict]) -> None:
    pct = [100 * r["cpu"] / r["wall"] for r in runs]
    print(f"\n{mode}: {len(runs)} runs of a {MODEL} pull")
    print(f"  wall                      median {statistics.median(r['wall'] for r in runs):6.2f} s")
    print(f"  client CPU in the pull    median {statistics.median(r['cpu'] for r in runs):6.3f} s "
          f"= {statistics.median(pct):.2f} % of one core (max {max(pct):.2f} %; target < 5 %)")
    if all("process_cpu" in r for r in runs):
        whole = [100 * r["process_cpu"] / r["wall"] for r in runs]
        print(f"  whole client process      median {statistics.median(r['process_cpu'] for r in runs):6.3f} s "
              f"= {statistics.median(whole):.2f} % (includes interpreter start-up and imports)")
    if mode == "tty":
        gaps = [b - a for r in runs for a, b in zip(r["redraws"], r["redraws"][1:], strict=False)]
        rate = statistics.median(len(r["redraws"]) / r["wall"] for r in runs)
        if gaps:
            gaps.sort()
            median_gap = 1000 * statistics.median(gaps)
            print(f"  screen redraws            median {rate:.1f}/s; gap median {median_gap:.0f} ms, "
                  f"p95 {1000 * gaps[int(0.95 * (len(gaps) - 1))]:.0f} ms, max {1000 * gaps[-1]:.0f} ms")
    else:
        lines = statistics.median(len(r["redraws"]) for r in runs)
        print(f"  progress lines written    median {lines:.0f} (Ollama sent ~{runs[0]['wall'] / 0.06:.0f} events)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=20e9, help="model size in bytes (default 20e9)")
    parser.add_argument("--rate", type=float, default=2e9, help="emulated download rate, bytes/s (default 2e9)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="tty,plain")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store, tempfile.TemporaryDirectory() as client_models:
        emulator, url = start_emulator(args.size, args.rate, store)
        try:
            for mode in args.modes.split(","):
                runs = []
                for _ in range(args.runs):
                    _reset(store)
                    runs.append(run_client(url, mode, client_models))
                    if runs[-1]["code"] != 0:
                        sys.exit(f"{mode}: the pull failed with exit code {runs[-1]['code']}")
                summarize(mode, runs)
        finally:
            assert emulator.stdin is not None
            emulator.stdin.close()
            emulator.wait(5)


def _reset(store: str) -> None:
    """Forget the downloaded model so every run downloads all 20 GB again (sparse files: no real disk)."""
    for path in Path(store, "blobs").glob("*"):
        path.unlink()
    for path in sorted(Path(store, "manifests").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()


if __name__ == "__main__":
    main()

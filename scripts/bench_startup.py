#!/usr/bin/env python3
"""Start-up time of the CLI: `localcodex --help` and `--version`, as a user's shell runs them.

Runs each command N times as a fresh process (the console script when installed, else `python -m localcodex`)
and prints the median, min and max wall time. Target (issue 3): `--help` under 0.25 s median.

    python scripts/bench_startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def command() -> list[str]:
    exe = shutil.which("localcodex")
    return [exe] if exe else [sys.executable, "-m", "localcodex"]


def time_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    base = command()
    print(f"command: {' '.join(base)}   runs: {args.runs}")
    python = [sys.executable, "-c", "pass"]
    rows = [("python -c pass (floor)", python)] + [(" ".join(["localcodex", *a]), base + a)
                                                   for a in (["--version"], ["--help"], ["paths", "--help"])]
    for label, argv in rows:
        time_once(argv, env)  # warm the OS file cache
        samples = [time_once(argv, env) for _ in range(args.runs)]
        med = statistics.median(samples)
        low, high = min(samples) * 1000, max(samples) * 1000
        print(f"{label:28s} median {med * 1000:7.1f} ms   min {low:7.1f}   max {high:7.1f}")


if __name__ == "__main__":
    main()

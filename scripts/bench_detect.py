#!/usr/bin/env python3
"""How long `detect` takes here: the whole command as a user runs it, and the core function in-process.

    python scripts/bench_detect.py            # 15 runs of each, medians printed
    python scripts/bench_detect.py --runs 30

The command is run as `python -m localcodex detect --json` (a fresh interpreter each time: start-up and
imports count, as they do for a user). Target: under 0.4 s median for the command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 0.4


def time_command(runs: int) -> list[float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    argv = [sys.executable, "-m", "localcodex", "detect", "--json"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"`{' '.join(argv[1:])}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return times


def time_in_process(runs: int) -> list[float]:
    sys.path.insert(0, str(REPO))
    from localcodex.core.detect import detect

    detect()  # warm: imports and first-touch of /proc and /sys are not what repeated calls cost
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        detect()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    command = time_command(args.runs)
    inproc = time_in_process(args.runs)
    print(f"localcodex detect --json  median {statistics.median(command):.3f} s  "
          f"(min {min(command):.3f}, max {max(command):.3f}, {args.runs} runs; target < {TARGET_S} s)")
    print(f"detect() in-process       median {statistics.median(inproc) * 1000:.1f} ms  "
          f"(min {min(inproc) * 1000:.1f}, max {max(inproc) * 1000:.1f})")
    return 0 if statistics.median(command) < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())

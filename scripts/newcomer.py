#!/usr/bin/env python3
"""A newcomer's first week with `localcodex setup`, scripted against the Ollama emulator (a 24 GiB GPU).

Each session starts an emulator with nothing installed and a fresh HOME/CODEX_HOME/LOCALCODEX_HOME, then runs
`python -m localcodex` as a user's shell would (stdin not a terminal):

1. `setup` without a terminal and without --yes: must exit 2 having created nothing;
2. `setup --yes`: the first setup (pull, variant, check, profile, benchmark);
3. `setup --yes` again: a no-op (profile bytes identical, no new model in /api/tags);
4. `setup --model <another> --context 32768 --yes` while the first model is still loaded: must succeed;
5. `models prune --yes`: leaves only the variants a Codex profile uses.

It prints one line per step with its wall time and, with --runs N, the medians over N sessions; --json prints
the outcomes and times of every session as one JSON object (what tests/test_newcomer.py reads).

    scripts/newcomer.py [--runs 5] [--json] [--decode-rate 60 --prompt-rate 4000]
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
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from emulator import Emulator  # noqa: E402  (the emulator lives with the tests)

GiB = 2**30
OTHER = "qwen3-coder:30b"


def tags(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/api/tags", timeout=10) as resp:
        return sorted(m["name"] for m in json.load(resp)["models"])


def localcodex(env: dict[str, str], *argv: str) -> tuple[int, float, dict[str, Any]]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "localcodex", *argv, "--json"], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = {"stdout": proc.stdout[-2000:], "stderr": proc.stderr[-2000:]}
    return proc.returncode, seconds, doc


def own_seconds(doc: dict[str, Any]) -> float | None:
    """A setup's time beyond the download and the model's load (the variant step is mostly the load)."""
    steps = {s["name"]: s["seconds"] for s in doc.get("data", {}).get("steps", [])}
    return round(sum(v for k, v in steps.items() if k not in ("pull", "variant")), 2) if steps else None


def session(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lc-newcomer-") as tmp:
        root = Path(tmp)
        env = dict(os.environ, HOME=str(root / "home"), CODEX_HOME=str(root / "home" / ".codex"),
                   LOCALCODEX_HOME=str(root / "lc"), OLLAMA_MODELS=str(root / "models"),
                   PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), NO_COLOR="1")
        for name in ("OLLAMA_HOST", "OLLAMA_CONTEXT_LENGTH", "OLLAMA_KV_CACHE_TYPE", "OLLAMA_NUM_PARALLEL"):
            env.pop(name, None)
        (root / "home" / ".codex").mkdir(parents=True)
        profile = root / "home" / ".codex" / "local_ollama.config.toml"
        out: dict[str, Any] = {}
        with Emulator(models_dir=root / "models", vram_bytes=24 * GiB, decode_rate=args.decode_rate,
                      prompt_rate=args.prompt_rate, load_time=args.load_time, pull_rate=args.pull_rate) as emu:
            host = ("--host", emu.url)
            code, seconds, doc = localcodex(env, "setup", *host, "--vram", "24GiB")
            out["no_terminal"] = {"code": code, "seconds": seconds, "tags": tags(emu.url),
                                  "profile": profile.exists(), "errors": doc.get("errors")}

            code, seconds, doc = localcodex(env, "setup", "--yes", *host, "--vram", "24GiB")
            data = doc.get("data") or {}
            out["first"] = {"code": code, "seconds": seconds, "own_seconds": own_seconds(doc),
                            "model": data.get("model"), "variant": data.get("variant"), "tags": tags(emu.url),
                            "steps": {s["name"]: [s["status"], s["seconds"]] for s in data.get("steps", [])},
                            "errors": doc.get("errors")}
            before = profile.read_bytes() if profile.exists() else b""

            code, seconds, doc = localcodex(env, "setup", "--yes", *host)
            out["rerun"] = {"code": code, "seconds": seconds, "tags": tags(emu.url),
                            "profile_same": profile.exists() and profile.read_bytes() == before,
                            "steps": {s["name"]: s["status"] for s in (doc.get("data") or {}).get("steps", [])},
                            "errors": doc.get("errors")}

            loaded = [m["name"] for m in emu.loaded]
            code, seconds, doc = localcodex(env, "setup", "--model", OTHER, "--context", "32768", "--yes", *host)
            data = doc.get("data") or {}
            out["switch"] = {"code": code, "seconds": seconds, "loaded_before": loaded, "variant": data.get("variant"),
                             "plan": data.get("plan"), "errors": doc.get("errors"), "tags": tags(emu.url)}

            code, seconds, doc = localcodex(env, "models", "prune", "--yes", *host)
            listed = localcodex(env, "models", "list", *host)[2].get("data") or []
            out["prune"] = {"code": code, "seconds": seconds, "removed": (doc.get("data") or {}).get("removed"),
                            "variants": {r["name"]: r["profiles"] for r in listed if "-ctx" in r["name"]}}
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="sessions to run (medians are printed)")
    parser.add_argument("--json", action="store_true", help="print every session's outcomes as JSON")
    parser.add_argument("--decode-rate", type=float, default=60.0)
    parser.add_argument("--prompt-rate", type=float, default=4000.0)
    parser.add_argument("--load-time", type=float, default=0.5)
    parser.add_argument("--pull-rate", type=float, default=3e9, help="download bytes per second")
    args = parser.parse_args()
    sessions = []
    for n in range(args.runs):
        sessions.append(session(args))
        if not args.json:
            s = sessions[-1]
            nt = s["no_terminal"]
            print(f"session {n + 1}: no terminal exit {nt['code']} in {nt['seconds']:.2f} s; "
                  f"first setup exit {s['first']['code']} in {s['first']['seconds']:.1f} s "
                  f"(own time {s['first']['own_seconds']} s, {s['first']['variant']}); re-run exit "
                  f"{s['rerun']['code']} in {s['rerun']['seconds']:.2f} s; switch to {OTHER} exit "
                  f"{s['switch']['code']} in {s['switch']['seconds']:.1f} s; prune exit {s['prune']['code']}",
                  flush=True)
    if args.json:
        print(json.dumps({"sessions": sessions}, indent=2))
        return 0

    def median(key: str, field: str = "seconds") -> float:
        return statistics.median(s[key][field] for s in sessions)

    print(f"medians over {len(sessions)} sessions: no terminal {median('no_terminal'):.2f} s, first setup "
          f"{median('first'):.1f} s (own time beyond download and load {median('first', 'own_seconds'):.1f} s), "
          f"no-op re-run {median('rerun'):.2f} s, model switch {median('switch'):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Re-run issue 19's adversarial checks against this checkout and print figures.

    python scripts/stress.py                 # everything (a few minutes on a 2-core machine)
    python scripts/stress.py configs kills   # some parts: configs, kills, writers, faults, inputs
    python scripts/stress.py --quick         # smaller counts, for a smoke run

Parts:
  configs  generated config.toml files (dotted keys, BOMs, CRLF, comments, arrays of tables, inline tables,
           multi-line strings, hosted and local URLs) edited by `configure --default`: every file must be
           edited (none refused), parse to the old values plus exactly the owned keys, and keep every line
           outside the owned keys.
  kills    `configure --default` killed with SIGKILL at every write and at random moments: every file old or
           new (never partial); after the next run that locks the folder, the profile and config.toml in
           step; `configure --restore` after a kill gives back exactly the original files.
  writers  8 concurrent `configure --default --provider-id pN` with separate LOCALCODEX_HOMEs, 10 rounds:
           every table kept, every run exit 0.
  faults   a server that stalls or trickles (HTTP 200, one byte a second): bench, pull, check, setup and
           bench --base-url must end within their limit + 5 s, with exit 10 (time limit) or 3 (unreachable).
  inputs   bad values (URLs, numbers, names, files): a documented exit code, one error line, no traceback,
           no file written.

Everything runs in temporary folders (HOME, CODEX_HOME, LOCALCODEX_HOME), only against 127.0.0.1.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

OWNED_LINE = re.compile(
    r"^\s*(?:\[(?:model_providers\.local_ollama|agents|features)\]"
    r"|(?:model|model_provider|model_context_window|model_auto_compact_token_limit|web_search|enabled|"
    r"unbounded_connection_retries|features\.unbounded_connection_retries|name|base_url|wire_api|"
    r"stream_idle_timeout_ms|request_max_retries|stream_max_retries)\s*=.*)\s*$|^\s*$",
)


def env_for(root: Path, data: str = "data") -> dict[str, str]:
    home = root / "home"
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "CODEX_", "LOCALCODEX_"))}
    env.update(HOME=str(home), CODEX_HOME=str(home / ".codex"), LOCALCODEX_HOME=str(root / data),
               OLLAMA_HOST="127.0.0.1:9", PYTHONPATH=str(REPO), NO_COLOR="1", LOCALCODEX_REGISTRY="http://127.0.0.1:9")
    return env


def lc(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localcodex", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------------------------------ configs


def random_config(rng: random.Random) -> str:
    lines: list[str] = []
    if rng.random() < 0.5:
        lines.append("# my Codex settings")
    if rng.random() < 0.6:
        lines.append(f'model = "{rng.choice(["gpt-5", "o3", "gpt-5-codex"])}"')
    if rng.random() < 0.3:
        lines.append(f"features.unbounded_connection_retries = {rng.choice(['true', 'false'])}")
    if rng.random() < 0.2:
        lines.append("features.plugins = false")
    if rng.random() < 0.2:
        lines.append('notify = ["notify-send", "Codex"]')
    if rng.random() < 0.2:
        lines.append('instructions = """\nBe brief.\n[not a table]\n"""')
    if rng.random() < 0.2:
        lines.append("model_providers.gw = { name = \"gw\", base_url = \"https://gw.example.com/v1\" }")
    tables = []
    for _ in range(rng.randint(0, 6)):
        kind = rng.randrange(7)
        if kind == 0:
            tables.append(f'[projects."/home/u/p{rng.randrange(10_000)}"]\ntrust_level = "trusted"')
        elif kind == 1:
            tables.append(f'[tui]\ntheme = "{rng.choice(["dark", "light"])}"  # mine')
        elif kind == 2:
            tables.append(f'[model_providers.m{rng.randrange(100)}]\nname = "x"\nbase_url = "http://10.0.0.{rng.randrange(255)}:8080/v1"')
        elif kind == 3:
            tables.append(f"[[skills]]\nname = 's{rng.randrange(100)}'")
        elif kind == 4:
            tables.append("[features]\nplugins = true")
        elif kind == 5:
            tables.append("[agents]\nenabled = true\nmax_threads = 4")
        else:
            tables.append(f"[mcp_servers.s{rng.randrange(100)}]\ncommand = \"npx\"\nargs = [\n  \"-y\",\n  \"srv\",\n]")
    seen: set[str] = set()
    for table in tables:
        header = table.split("\n", 1)[0]
        if header in seen and not header.startswith("[["):
            continue
        seen.add(header)
        lines += [""] * rng.randint(0, 2) + [table]
    text = "\n".join(lines) + ("\n" if rng.random() < 0.8 else "")
    if rng.random() < 0.15:
        text = text.replace("\n", "\r\n")
    if rng.random() < 0.1:
        text = "\ufeff" + text
    try:
        tomllib.loads(text.lstrip("\ufeff"))
    except tomllib.TOMLDecodeError:
        return random_config(rng)  # only valid files count
    return text


def part_configs(count: int) -> dict[str, object]:
    from localcodex.adapters import codex_cli
    from localcodex.core.configure import ConfigureRequest, configure
    from localcodex.errors import LocalcodexError
    from localcodex.invocation import Invocation
    from localcodex.wiring import Live

    codex_cli.codex_info = lambda *a, **k: codex_cli.CodexInfo(Path("codex"), (0, 169, 0), "codex-cli 0.169.0")
    rng = random.Random(19)
    refused, wrong_values, foreign_lines, not_idempotent, with_bom, dotted = 0, 0, 0, 0, 0, 0
    examples: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lc-stress-configs-") as tmp:
        root = Path(tmp)
        for n in range(count):
            text = random_config(rng)
            with_bom += text.startswith("\ufeff")
            dotted += "features.unbounded" in text
            home = root / f"c{n}"
            home.mkdir()
            os.environ["LOCALCODEX_HOME"] = str(root / f"d{n}")
            (home / "config.toml").write_bytes(text.encode())
            hosted = rng.random() < 0.4
            req = ConfigureRequest(model="qwen3-coder:30b", context=32768, make_default=True, codex_home=home,
                                   base_url="https://gateway.example.com/v1" if hosted else None,
                                   host="127.0.0.1:11434")
            try:
                configure(req, Live(Invocation.build()))
            except LocalcodexError as exc:
                refused += 1
                examples.append(f"refused: {exc.message[:120]}")
                continue
            new = (home / "config.toml").read_bytes().decode()
            if text.startswith("\ufeff") != new.startswith("\ufeff"):
                wrong_values += 1
            expected = tomllib.loads(text.lstrip("\ufeff"))
            expected.update(model="qwen3-coder:30b", model_provider="local_ollama", model_context_window=32768,
                            model_auto_compact_token_limit=29491, web_search="disabled")
            expected.setdefault("agents", {})["enabled"] = False
            features = expected.setdefault("features", {})
            if hosted:
                features.pop("unbounded_connection_retries", None)
                if not features:
                    expected.pop("features")
            else:
                features["unbounded_connection_retries"] = False
            table = expected.setdefault("model_providers", {}).setdefault("local_ollama", {})
            table.update(name="local_ollama" if hosted else "Ollama (localcodex)", wire_api="responses",
                         stream_idle_timeout_ms=600000,
                         base_url="https://gateway.example.com/v1" if hosted else "http://127.0.0.1:11434/v1")
            if not hosted:
                table.update(request_max_retries=1, stream_max_retries=2)
            got = tomllib.loads(new.lstrip("\ufeff"))
            if got != expected:
                wrong_values += 1
                examples.append(f"values differ in file {n}: {sorted(k for k in got if got[k] != expected.get(k))}")
                if os.environ.get("STRESS_DEBUG"):
                    print(repr(text), "\n->\n", repr(new), got, expected, sep="\n")
            old_lines = text.lstrip("\ufeff").splitlines()
            new_lines = new.lstrip("\ufeff").splitlines()
            matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
            for op, i1, i2, j1, j2 in matcher.get_opcodes():
                if op != "equal":
                    bad = [x for x in old_lines[i1:i2] + new_lines[j1:j2] if not OWNED_LINE.match(x)]
                    if bad:
                        foreign_lines += 1
                        examples.append(f"file {n}: foreign line changed: {bad[0]!r}")
                        break
            before = (home / "config.toml").read_bytes()
            configure(req, Live(Invocation.build()))
            not_idempotent += (home / "config.toml").read_bytes() != before
    os.environ.pop("LOCALCODEX_HOME", None)
    return {"configs": count, "with_bom": with_bom, "with_dotted_feature_key": dotted, "refused": refused,
            "wrong_values": wrong_values, "diffs_outside_owned_keys": foreign_lines,
            "second_run_changed_something": not_idempotent, "examples": examples[:5]}


# ------------------------------------------------------------------------------------------ kills

KILL_SCRIPT = """
import os, random, signal, sys, threading, time
from localcodex.adapters import codex_write
mode, value = sys.argv[1], float(sys.argv[2])
calls = {"n": 0}
def crash(tmp, path):
    calls["n"] += 1
    if mode == "at" and calls["n"] == int(value):
        os.kill(os.getpid(), signal.SIGKILL)
codex_write._before_replace = crash
if mode == "after":
    threading.Timer(value, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
from localcodex.cli import main
main(["configure", "--model", "qwen3-coder:30b", "--context", "32768", "--default"])
"""

ORIGINAL = '# keep me\nmodel = "gpt-5"\n\n[tui]\ntheme = "dark"\n'


def part_kills(count: int) -> dict[str, object]:
    rng = random.Random(7)
    partial = out_of_step = restore_wrong = restore_refused = killed = split_now = 0
    examples: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lc-stress-kills-") as tmp:
        root = Path(tmp)
        ref_env = env_for(root / "ref")
        Path(ref_env["CODEX_HOME"], "config.toml").write_text(ORIGINAL)
        subprocess.run([sys.executable, "-c", KILL_SCRIPT, "none", "0"], env=ref_env, check=True,
                       capture_output=True, timeout=120)
        new = {n: Path(ref_env["CODEX_HOME"], n).read_text() for n in ("config.toml", "local_ollama.config.toml")}
        old = {"config.toml": ORIGINAL, "local_ollama.config.toml": None}
        for trial in range(count):
            env = env_for(root / f"t{trial}")
            codex = Path(env["CODEX_HOME"])
            (codex / "config.toml").write_text(ORIGINAL)
            args = ["at", str(1 + trial % 5)] if trial % 2 == 0 else ["after", f"{rng.uniform(0.2, 1.2):.3f}"]
            proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, *args], env=env, capture_output=True,
                                  timeout=120)
            killed += proc.returncode == -signal.SIGKILL
            state = {}
            for name in new:
                path = codex / name
                text = path.read_text() if path.exists() else None
                if text not in (old[name], new[name]):
                    partial += 1
                    examples.append(f"trial {trial}: {name} partial")
                state[name] = "new" if text == new[name] else "old"
            split_now += len(set(state.values())) > 1
            if trial % 4 == 3:  # undo: exactly the original files
                result = lc(["configure", "--restore"], env)
                if result.returncode not in (0, 4):
                    restore_refused += 1
                    examples.append(f"trial {trial}: restore exit {result.returncode}: {result.stderr[-200:]}")
                names = sorted(p.name for p in codex.iterdir())
                if (codex / "config.toml").read_text() != ORIGINAL or names != ["config.toml"]:
                    restore_wrong += 1
                    examples.append(f"trial {trial}: restore left {names}")
                continue
            # the next run that locks the folder (another profile) finishes a half-done change
            lc(["configure", "--model", "x:1b", "--context", "8192", "--profile", "other"], env)
            after = {n: (codex / n).read_text() if (codex / n).exists() else None for n in new}
            in_step = after in (new, old)
            if not in_step:
                out_of_step += 1
                examples.append(f"trial {trial} ({' '.join(args)}): out of step after the next run: {state}")
    return {"trials": count, "killed": killed, "partial_files": partial,
            "split_right_after_the_kill (journal left)": split_now, "out_of_step_pairs": out_of_step,
            "restore_refused": restore_refused, "restore_not_exact": restore_wrong, "examples": examples[:5]}


# ------------------------------------------------------------------------------------------ writers


def part_writers(writers: int, rounds: int) -> dict[str, object]:
    lost = failed = 0
    examples: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lc-stress-writers-") as tmp:
        for rnd in range(rounds):
            root = Path(tmp) / f"r{rnd}"
            base = env_for(root)
            Path(base["CODEX_HOME"], "config.toml").write_text("# shared\n")
            procs = []
            for i in range(writers):
                env = {**base, "LOCALCODEX_HOME": str(root / f"data{i}")}
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "localcodex", "configure", "--model", f"m{i}:1b", "--context", "8192",
                     "--profile", f"p{i}", "--provider-id", f"p{i}", "--default"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
            for p in procs:
                _, err = p.communicate(timeout=300)
                if p.returncode != 0:
                    failed += 1
                    examples.append(err.strip().splitlines()[-1] if err.strip() else f"exit {p.returncode}")
            data = tomllib.loads(Path(base["CODEX_HOME"], "config.toml").read_text())
            missing = {f"p{i}" for i in range(writers)} - set(data.get("model_providers", {}))
            lost += len(missing)
            leftovers = [p.name for p in Path(base["CODEX_HOME"]).iterdir() if p.name.startswith(".")]
            if leftovers:
                examples.append(f"round {rnd}: left {leftovers}")
    return {"writers": writers, "rounds": rounds, "lost_tables": lost, "failed_runs": failed,
            "examples": examples[:5]}


# ------------------------------------------------------------------------------------------ faults


class FaultServer:
    """`stall`: read the request, never answer. `trickle`: HTTP 200 then one byte a second, forever."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                if self.mode == "trickle":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n")
                while not self.stop.wait(1.0):
                    if self.mode == "trickle":
                        conn.sendall(b" ")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def part_faults() -> dict[str, object]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="lc-stress-faults-") as tmp:
        env = env_for(Path(tmp))
        for mode in ("stall", "trickle"):
            server = FaultServer(mode)
            try:
                cases = [
                    ("bench --timeout 15", ["bench", "llama3.2:3b", "--host", server.url, "--timeout", "15"], 15),
                    ("bench --base-url --timeout 15", ["bench", "m", "--base-url", server.url + "/v1",
                                                       "--timeout", "15"], 15),
                    ("pull --timeout 15", ["pull", "qwen3:0.6b", "--host", server.url, "--timeout", "15"], 15),
                    ("setup --model", ["setup", "--model", "qwen3:0.6b", "--host", server.url, "--yes"], 30),
                    ("check", ["check", "--model", "m", "--host", server.url], 60),
                ]
                for name, args, limit in cases:
                    started = time.monotonic()
                    try:
                        result = lc(args, env, timeout=limit + 120)
                        code = result.returncode
                        last = (result.stderr.strip().splitlines() or [""])[-1]
                    except subprocess.TimeoutExpired:
                        code, last = None, "did not end"
                    took = time.monotonic() - started
                    rows.append({"server": mode, "command": name, "limit_s": limit, "took_s": round(took, 1),
                                 "exit": code, "within_limit_plus_5": took <= limit + 5, "last_line": last[:160]})
            finally:
                server.close()
    return {"runs": rows, "over_limit": sum(not r["within_limit_plus_5"] for r in rows)}


# ------------------------------------------------------------------------------------------ inputs

BAD_INPUTS = [
    (["configure", "--model", "m", "--context", "32768", "--base-url", "http://[::1:8080/v1"], (2,)),
    (["configure", "--model", "m", "--context", "32768", "--base-url", ""], (2,)),
    (["configure", "--model", "m", "--context", "32768", "--base-url", "http://127.0.0.1:99999/v1"], (2,)),
    (["configure", "--model", "m", "--context", "32768", "--base-url", "http://127.0.0.1:8080/v1/v1"], (2,)),
    (["configure", "--model", "m", "--context", "32768", "--base-url", "http://a b:8080/v1"], (2,)),
    (["configure", "--model", "m", "--context", "32768", "--base-url", "http://alice:pw@127.0.0.1:8080/v1"], (2,)),
    (["configure", "--model", "m", "--context", "32768", "--base-url", "http://h:1/v1?api_key=sk-live-abc123"], (2,)),
    (["configure", "--model", "m", "--context", "32768", "--header", "X-Custom=Bearer sk-proj-abcdef123456"], (2,)),
    (["configure", "--model", "m", "--context", "32768", "--idle-timeout", "-1"], (2,)),
    (["configure", "--model", "m", "--context", "1000000000000"], (2,)),
    (["configure", "--model", "bad name", "--context", "32768"], (2,)),
    (["configure", "--model", "../../etc", "--context", "32768"], (2,)),
    (["configure", "--model", "x" * 5000, "--context", "32768"], (2,)),
    (["bench", "bad name"], (2,)),
    (["models", "import", "/nonexistent/file.gguf", "--name", "x"], (4,)),
    (["check"], (3, 2)),
    (["pull", "qwen3:0.6b", "--timeout", "0"], (2,)),
]


def part_inputs() -> dict[str, object]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="lc-stress-inputs-") as tmp:
        env = env_for(Path(tmp))
        codex = Path(env["CODEX_HOME"])
        for args, wanted in BAD_INPUTS:
            before = sorted(p.name for p in codex.iterdir())
            result = lc(args, env, timeout=120)
            errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
            rows.append({
                "args": " ".join(a if len(a) < 40 else a[:20] + "…" for a in args), "exit": result.returncode,
                "wanted": list(wanted), "ok": result.returncode in wanted and "Traceback" not in result.stderr
                and "internal error" not in result.stderr and sorted(p.name for p in codex.iterdir()) == before,
                "error": errors[0][:140] if errors else result.stderr.strip()[-140:],
            })
    return {"inputs": len(rows), "wrong": sum(not r["ok"] for r in rows), "rows": rows}


# ------------------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", default=["configs", "kills", "writers", "faults", "inputs"])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures: dict[str, object] = {}
    for part in args.parts:
        started = time.monotonic()
        if part == "configs":
            figures[part] = part_configs(60 if args.quick else 520)
        elif part == "kills":
            figures[part] = part_kills(12 if args.quick else 120)
        elif part == "writers":
            figures[part] = part_writers(8, 2 if args.quick else 10)
        elif part == "faults":
            figures[part] = part_faults()
        elif part == "inputs":
            figures[part] = part_inputs()
        else:
            parser.error(f"unknown part {part!r}")
        figures[part]["seconds"] = round(time.monotonic() - started, 1)  # type: ignore[index]
        if not args.json:
            print(f"== {part}")
            print(json.dumps(figures[part], indent=2))
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

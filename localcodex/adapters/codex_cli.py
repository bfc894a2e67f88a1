"""The Codex CLI as a program: find it, read its version, run `codex exec` with a profile.

Every subprocess gets stdin from /dev/null (Codex waits on an open stdin), a timeout (Codex retries a dead
server forever by default), and the environment the caller chose (CODEX_HOME above all).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from localcodex.errors import CodexMissing, LocalcodexError

# `-p NAME` reads $CODEX_HOME/NAME.config.toml from this version on; before it, `[profiles.NAME]` tables.
PROFILE_FILES_SINCE = (0, 134, 0)
VERSION_TIMEOUT = 15.0
_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
INSTALL_HINT = "install it with `npm install -g @openai/codex` (or `brew install codex`), then check `codex --version`"


def find_codex(env: Mapping[str, str] | None = None) -> Path | None:
    """The `codex` executable on PATH (of `env`, default this process's), or None."""
    path = (os.environ if env is None else env).get("PATH")
    found = shutil.which("codex", path=path)
    return Path(found) if found else None


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first x.y.z in `codex --version` output.

    >>> parse_version("codex-cli 0.169.0")
    (0, 169, 0)
    >>> parse_version("codex-cli 0.134.0-alpha.2\\n")
    (0, 134, 0)
    >>> parse_version("something else") is None
    True
    """
    match = _VERSION_RE.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def supports_profile_files(version: tuple[int, int, int]) -> bool:
    """Codex 0.134.0 and later read `-p NAME` from `$CODEX_HOME/NAME.config.toml`.

    >>> supports_profile_files((0, 169, 0)), supports_profile_files((0, 133, 9))
    (True, False)
    """
    return version >= PROFILE_FILES_SINCE


@dataclass(frozen=True)
class CodexInfo:
    path: Path
    version: tuple[int, int, int] | None
    version_text: str

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version)) if self.version else "unknown"


def codex_info(codex: Path | None = None, env: Mapping[str, str] | None = None) -> CodexInfo | None:
    """`codex --version`, parsed; None when Codex is not installed. A broken install raises CodexMissing."""
    codex = codex or find_codex(env)
    if codex is None:
        return None
    try:
        proc = subprocess.run(
            [str(codex), "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT,
            stdin=subprocess.DEVNULL, env=dict(os.environ if env is None else env),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CodexMissing(f"`{codex} --version` failed: {exc}", INSTALL_HINT) from None
    text = (proc.stdout or proc.stderr).strip()
    return CodexInfo(codex, parse_version(text), text)


@dataclass(frozen=True)
class ExecResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


def run_exec(
    prompt: str,
    *,
    profile: str | None,
    codex_home: Path,
    timeout: float = 120.0,
    extra_args: Sequence[str] = (),
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    codex: Path | None = None,
) -> ExecResult:
    """`codex exec [-p PROFILE] --skip-git-repo-check [extra…] PROMPT` with CODEX_HOME set, stdin from
    /dev/null and a hard timeout (the process is killed when it runs past it: `timed_out` is then True)."""
    codex = codex or find_codex(env)
    if codex is None:
        raise CodexMissing("the Codex CLI (`codex`) is not on PATH", INSTALL_HINT)
    argv = [str(codex), "exec"]
    if profile:
        argv += ["-p", profile]
    argv += ["--skip-git-repo-check", *extra_args, prompt]
    full_env = dict(os.environ if env is None else env)
    full_env["CODEX_HOME"] = str(codex_home)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            env=full_env, cwd=str(cwd) if cwd else None, start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        return ExecResult(tuple(argv), -9, _text(exc.stdout), _text(exc.stderr), time.monotonic() - started, True)
    return ExecResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# ------------------------------------------------------------------------- Codex's own base prompt


# Settings for the private CODEX_HOME of the capture run below: no update check, no analytics, no plugin
# sync (each of these otherwise reaches a non-loopback address, see the test suite's strace check).
QUIET_CONFIG = """check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
"""


def capture_base_instructions(codex: Path, *, timeout: float = 60.0) -> str:
    """The system prompt Codex sends for a model it has no metadata for (its generic coding-agent prompt).

    A model catalog entry must carry `base_instructions`, and that text *replaces* Codex's prompt. To keep
    the model's instructions exactly what Codex would send without a catalog, localcodex asks the installed
    Codex: it runs `codex exec` once, in a throw-away CODEX_HOME, against a one-shot server on 127.0.0.1
    that records the request and answers "ok". Nothing leaves the machine; the result depends only on the
    Codex version, so callers cache it per version.
    """
    with tempfile.TemporaryDirectory(prefix="localcodex-prompt-") as tmp, _CaptureServer() as server:
        home = Path(tmp) / "codex-home"
        home.mkdir()
        (home / "config.toml").write_text(QUIET_CONFIG)
        (home / "capture.config.toml").write_text(
            'model = "localcodex-prompt-capture"\nmodel_provider = "capture"\n'
            '[features]\nunbounded_connection_retries = false\n'
            f'[model_providers.capture]\nname = "capture"\nbase_url = "{server.url}"\n'
            "request_max_retries = 0\nstream_max_retries = 0\n"
        )
        result = run_exec("Reply with: ok", profile="capture", codex_home=home, timeout=timeout, codex=codex,
                          cwd=Path(tmp))
        body = server.body
    if body is None:
        raise LocalcodexError(
            f"could not read Codex's default prompt (codex exec exited {result.returncode}"
            f"{', timed out' if result.timed_out else ''}): {_last_line(result.stderr)}",
            "pass --instructions FILE to give the model catalog a system prompt yourself",
            code="codex_prompt",
        )
    return _base_prompt(body)


def _base_prompt(body: dict[str, Any]) -> str:
    """`instructions` when Codex sends them; else its first developer message (Codex 0.169 does that)."""
    if isinstance(body.get("instructions"), str) and body["instructions"].strip():
        return body["instructions"]
    for item in body.get("input") or []:
        if isinstance(item, dict) and item.get("role") in ("developer", "system"):
            texts = [c.get("text", "") for c in item.get("content") or [] if isinstance(c, dict)]
            if texts and texts[0].strip():
                return texts[0]
    raise LocalcodexError(
        "Codex's request carried no system prompt localcodex could recognise",
        "pass --instructions FILE to give the model catalog a system prompt yourself",
        code="codex_prompt",
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class _CaptureServer:
    """A one-request Responses endpoint on 127.0.0.1: keeps the first request body, answers a short text."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                with contextlib.suppress(ValueError):
                    if outer.body is None:
                        outer.body = json.loads(raw or b"{}")
                data = _sse_reply("ok").encode()
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> _CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _sse_reply(text: str) -> str:
    events = [
        {"type": "response.created", "response": {"id": "resp_capture"}},
        {"type": "response.output_item.done", "item": {
            "type": "message", "role": "assistant", "id": "msg_capture",
            "content": [{"type": "output_text", "text": text}]}},
        {"type": "response.completed", "response": {
            "id": "resp_capture", "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}},
    ]
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)

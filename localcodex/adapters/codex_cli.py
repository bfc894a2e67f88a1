"""The Codex CLI as a program: find it, read its version, run `codex exec` with a profile.

Every subprocess gets stdin from /dev/null (Codex waits on an open stdin), a timeout (Codex retries a dead
server forever by default), and the environment the caller chose (CODEX_HOME above all).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from localcodex.domain.urls import parse_version
from localcodex.errors import CodexMissing, LocalcodexError

VERSION_TIMEOUT = 15.0
INSTALL_HINT = "install it with `npm install -g @openai/codex` (or `brew install codex`), then check `codex --version`"


def find_codex(env: Mapping[str, str] | None = None) -> Path | None:
    """The `codex` executable on PATH (of `env`, default this process's), or None."""
    path = (os.environ if env is None else env).get("PATH")
    found = shutil.which("codex", path=path)
    return Path(found) if found else None


def exec_codex(codex: Path, args: list[str]) -> None:
    """Replace this process with `codex ARGS` (as `ollama launch codex` does): never returns on success."""
    os.execv(str(codex), [str(codex), *args])


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
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            encoding="utf-8", errors="replace", env=full_env, cwd=str(cwd) if cwd else None, **_NEW_GROUP,
        )
    except OSError as exc:
        raise CodexMissing(f"cannot run {codex}: {exc.strerror or exc}", INSTALL_HINT) from None
    with proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            stdout, stderr = _drain(proc)
            return ExecResult(tuple(argv), -9, stdout, stderr, time.monotonic() - started, True)
        except BaseException:  # Ctrl-C included: Codex runs in its own group, so it would not see the signal
            kill_tree(proc)
            raise
    return ExecResult(tuple(argv), proc.returncode, stdout, stderr, time.monotonic() - started)


# `codex` is a Node launcher that starts the native binary, which starts shells for the model: on a timeout all
# of them must go. A new session (POSIX) or process group (Windows) lets kill_tree reach them together.
_NEW_GROUP: dict[str, Any] = (
    {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)} if os.name == "nt"
    else {"start_new_session": True}
)
DRAIN_TIMEOUT = 5.0


def kill_tree(proc: subprocess.Popen[str]) -> None:
    """Kill `proc`, its process group and every descendant still attached to it (found before the kill)."""
    import psutil

    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    if os.name == "posix":
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    for child in descendants:
        with contextlib.suppress(psutil.Error):
            child.kill()
    with contextlib.suppress(OSError):
        proc.kill()


def _drain(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """What the killed process wrote; a grandchild that escaped the kill must not hold the pipes open forever."""
    try:
        stdout, stderr = proc.communicate(timeout=DRAIN_TIMEOUT)
    except subprocess.TimeoutExpired:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        proc.wait(DRAIN_TIMEOUT)
        return "", ""
    return stdout or "", stderr or ""


@dataclass(frozen=True)
class ExecEvents:
    """What `codex exec --json` reported, read from its JSON lines (one per event).

    Event shapes (Codex 0.169): `thread.started {thread_id}`, `turn.started`, `item.started|item.completed {item}`
    with item types `agent_message {text}`, `command_execution {command, exit_code}`, `file_change {changes}` and
    `error {message}` (a non-fatal warning, e.g. missing model metadata); a top-level `error {message}` for each
    failed request ("Reconnecting... 1/5 (…)") and the final failure; `turn.completed {usage}` or
    `turn.failed {error: {message}}`. Unknown events and lines that are not JSON are skipped.
    """

    thread_id: str | None = None
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    messages: tuple[str, ...] = ()  # the model's answers, in order
    commands: tuple[str, ...] = ()  # shell commands Codex ran for the model
    files_changed: tuple[str, ...] = ()  # paths Codex's own patch tool changed
    errors: tuple[str, ...] = ()  # top-level error events: retries and the final failure
    warnings: tuple[str, ...] = ()  # non-fatal error items
    turn_failed: str | None = None
    completed: bool = False  # a turn.completed event arrived
    tool_calls: int = 0  # commands run and patches applied for the model

    @property
    def last_message(self) -> str | None:
        return self.messages[-1] if self.messages else None

    @property
    def retries(self) -> int:
        return sum(1 for e in self.errors if e.startswith("Reconnecting"))


_USAGE_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")


def parse_exec_events(stdout: str) -> ExecEvents:
    """Fold the JSON lines of `codex exec --json` into one ExecEvents (token counts summed over turns).

    >>> e = parse_exec_events('{"type":"turn.completed","usage":{"input_tokens":10,"output_tokens":3}}\\nnoise')
    >>> e.completed, e.input_tokens, e.output_tokens, e.cached_input_tokens
    (True, 10, 3, None)
    """
    found: dict[str, Any] = {"messages": [], "commands": [], "files_changed": [], "errors": [], "warnings": []}
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            _fold(found, event)
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in found.items()}
    return ExecEvents(**fields)


def _fold(found: dict[str, Any], event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "thread.started":
        found["thread_id"] = event.get("thread_id")
    elif kind == "turn.completed":
        found["completed"] = True
        usage = event.get("usage") or {}
        for key in _USAGE_KEYS:
            if isinstance(usage.get(key), int):
                found[key] = found.get(key, 0) + usage[key]
    elif kind == "turn.failed":
        found["turn_failed"] = str((event.get("error") or {}).get("message") or "the turn failed")
    elif kind == "error":
        found["errors"].append(str(event.get("message") or ""))
    elif kind == "item.completed" and isinstance(event.get("item"), dict):
        _fold_item(found, event["item"])


def _fold_item(found: dict[str, Any], item: dict[str, Any]) -> None:
    kind = item.get("type")
    if kind == "agent_message":
        found["messages"].append(str(item.get("text") or ""))
    elif kind == "command_execution":
        found["commands"].append(str(item.get("command") or ""))
        found["tool_calls"] = found.get("tool_calls", 0) + 1
    elif kind == "file_change":
        found["tool_calls"] = found.get("tool_calls", 0) + 1
        found["files_changed"] += [str(c.get("path")) for c in item.get("changes") or [] if isinstance(c, dict)]
    elif kind == "error":
        found["warnings"].append(str(item.get("message") or ""))


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

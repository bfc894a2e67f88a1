"""Shared fixtures. Every test runs hermetically: HOME, CODEX_HOME, LOCALCODEX_HOME and OLLAMA_MODELS point
into the test's tmp_path, OLLAMA_HOST points at a closed loopback port, and no variable of the real
environment that changes localcodex's behaviour leaks in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["emulator.pytest_plugin"]

_LEAKY_VARS = (
    "OLLAMA_HOST", "OLLAMA_MODELS", "OLLAMA_API_KEY", "OLLAMA_CONTEXT_LENGTH", "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_NUM_PARALLEL", "OLLAMA_ORIGINS", "OLLAMA_GPU_OVERHEAD", "OLLAMA_FLASH_ATTENTION",
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEX_HOME", "LOCALCODEX_HOME", "LOCALCODEX_DEBUG",
    "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "FORCE_COLOR", "LOCALCODEX_EMULATOR_CACHE",
)


@pytest.fixture(scope="session")
def emulator_digest_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One digest cache for the session (tests/emulator/digests.py): a big blob missing from the committed table is
    hashed once per session, not once per test, and never into the real home's ~/.cache."""
    return tmp_path_factory.mktemp("emulator-cache") / "digests.json"


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator_digest_cache: Path) -> Path:
    for name in _LEAKY_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("CODEX_HOME", str(home / ".codex"))
    monkeypatch.setenv("LOCALCODEX_HOME", str(tmp_path / "localcodex-data"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama-models"))
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")  # nothing listens there: a forgotten --host fails fast
    monkeypatch.setenv("LOCALCODEX_REGISTRY", "http://127.0.0.1:9")  # pull's size look-up never goes online
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("LOCALCODEX_EMULATOR_CACHE", str(emulator_digest_cache))
    monkeypatch.setenv("COLUMNS", "160")
    return home


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `localcodex ARGS…` in-process, exactly as the console script does; returns a CliResult."""
    from localcodex.cli import main
    from localcodex.render import output

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            output.DEBUG = False
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_process():
    """Run `python -m localcodex ARGS…` as a real process (for start-up, signals and TTY-less behaviour)."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120, **kw) -> CliResult:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join([str(REPO), full_env.get("PYTHONPATH", "")])
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "localcodex", *map(str, args)],
            capture_output=True, text=True, env=full_env, timeout=timeout, stdin=subprocess.DEVNULL, **kw,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


def _llama_server(tmp_path_factory: pytest.TempPathFactory, ctx: int):
    from llama_server import require_llama_server, start_llama_server

    binary, model = require_llama_server()
    server = start_llama_server(binary, model, ctx, tmp_path_factory.mktemp(f"llama-c{ctx}"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llama_8k(tmp_path_factory: pytest.TempPathFactory):
    """A real llama-server (SmolLM2-135M, `-c 8192 -np 1 --jinja`), shared by the session: prefill is slow here."""
    yield from _llama_server(tmp_path_factory, 8192)


@pytest.fixture(scope="session")
def llama_16k(tmp_path_factory: pytest.TempPathFactory):
    """The same with `-c 16384`: a context that passes check's 16,384-token probe."""
    yield from _llama_server(tmp_path_factory, 16384)

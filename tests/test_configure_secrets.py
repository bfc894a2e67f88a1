"""Issue 19: a Codex config that holds a credential is not left readable by other users, and everything localcodex
creates is private. localcodex never writes a credential itself; these are files a user wrote one into."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from localcodex.adapters import codex_cli

pytestmark = pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX modes")

CTX = ["--model", "qwen3-coder:30b", "--context", "32768"]
KEY = "sk-proj-4f9a8b7c6d5e4f3a2b1c"
WITH_SECRET = f'model = "gpt-5"\n\n[model_providers.gw]\nname = "gw"\nbase_url = "https://gw.example/v1"\n' \
              f'http_headers = {{ "X-Custom" = "Bearer {KEY}" }}\n'


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(codex_cli, "codex_info", lambda *a, **k: codex_cli.CodexInfo(
        Path("codex"), (0, 169, 0), "codex-cli 0.169.0"))
    return Path(os.environ["CODEX_HOME"])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def config_with(home: Path, text: str, file_mode: int) -> Path:
    config = home / "config.toml"
    config.write_text(text)
    config.chmod(file_mode)
    return config


def test_a_readable_config_holding_a_secret_is_made_private_when_localcodex_rewrites_it(cli, home: Path) -> None:
    config = config_with(home, WITH_SECRET, 0o644)
    result = cli("configure", *CTX, "--default")
    assert result.code == 0, result.output
    assert mode(config) == 0o600
    said = [line for line in result.stderr.splitlines() if str(config) in line and "credentials" in line]
    assert len(said) == 1 and "mode 0644" in said[0] and "made it 0600" in said[0]
    assert f"chmod 600 {config}" in said[0]
    assert KEY not in result.output


def test_a_file_it_only_read_gets_the_chmod_to_run(cli, home: Path) -> None:
    config = config_with(home, WITH_SECRET, 0o600)
    assert cli("configure", *CTX, "--default").code == 0
    config.chmod(0o640)
    result = cli("configure", *CTX, "--default")  # nothing changes: config.toml is not rewritten
    assert result.code == 0 and "unchanged" in result.stdout
    assert mode(config) == 0o640
    assert f"make it private with `chmod 600 {config}`" in result.stderr and "mode 0640" in result.stderr


def test_modes_are_never_loosened_nor_tightened_without_a_secret(cli, home: Path) -> None:
    config = config_with(home, 'model = "gpt-5"\n', 0o644)
    result = cli("configure", *CTX, "--default")
    assert result.code == 0 and mode(config) == 0o644 and "credentials" not in result.stderr
    config.write_text(WITH_SECRET)
    config.chmod(0o444)
    result = cli("configure", *CTX, "--default", "--force")  # read-only stays read-only: 0400, not 0600
    assert result.code == 0 and mode(config) == 0o400 and f"chmod 400 {config}" in result.stderr


def test_json_mode_carries_the_warning_in_the_envelope(cli, home: Path) -> None:
    config = config_with(home, WITH_SECRET, 0o664)
    doc = cli("configure", *CTX, "--default", "--json").json()
    assert any(str(config) in w and "made it 0600" in w for w in doc["warnings"]) and mode(config) == 0o600


def test_provider_add_and_restore_also_keep_it_private(cli, home: Path) -> None:
    config = config_with(home, WITH_SECRET, 0o644)
    result = cli("provider", "add", "llama-cpp", "--model", "qwen", "--context", "32768",
                 "--base-url", "http://127.0.0.1:8080/v1", "--default")
    assert result.code == 0, result.output
    assert mode(config) == 0o600 and "made it 0600" in result.stderr
    config.chmod(0o644)
    restored = cli("configure", "--restore")
    assert restored.code == 0, restored.output
    assert config.read_text() == WITH_SECRET and mode(config) == 0o600 and "made it 0600" in restored.stderr
    assert KEY not in result.output + restored.output


def test_every_file_and_folder_a_full_run_creates_is_private(cli, emulator_factory, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """setup (pull, variant, check, configure, bench), configure with a model catalog and a second bench, under
    the usual umask 022: every file and folder localcodex created, in its data folder and in a fresh
    CODEX_HOME, is 0600 / 0700."""
    fresh = tmp_path / "fresh"
    monkeypatch.setenv("CODEX_HOME", str(fresh / "codex"))
    monkeypatch.setenv("LOCALCODEX_HOME", str(fresh / "data"))
    emu = emulator_factory(decode_rate=400.0, prompt_rate=20000.0)
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You are a coding agent.\n")
    old = os.umask(0o022)
    try:
        setup = cli("setup", "--yes", "--json", "--host", emu.url, "--model", "llama3.2:3b")
        assert setup.code == 0, setup.output
        variant = setup.json()["data"]["variant"]
        assert cli("configure", "--model", variant, "--host", emu.url, "--model-catalog", "--instructions", prompt,
                   "--profile", "second", "--default").code == 0
        assert cli("bench", variant, "--host", emu.url, "--prompt-tokens", "short").code == 0
        assert cli("receipts", "export", "--out", fresh / "data" / "export.csv").code == 0
    finally:
        os.umask(old)
    made = sorted(fresh.rglob("*"))
    assert {p.name for p in made} >= {"codex", "data", "config.toml", "local_ollama.config.toml",
                                      "second.config.toml", "second.model-catalog.json", "receipts.sqlite3",
                                      "backups", "export.csv"}
    loose = [f"{p} {mode(p):04o}" for p in [fresh, *made]
             if mode(p) != (0o700 if p.is_dir() else 0o600)]
    assert not loose, loose

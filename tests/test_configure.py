"""`localcodex configure`: what it writes, that it keeps every other byte, and that it fails safely.

Tests that need the real Codex CLI are in test_codex_real.py; here Codex is only asked for its version
(a fake `codex` on PATH stands in for versions we cannot install side by side).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from localcodex.adapters import codex_changes, codex_cli, codex_config, codex_lock, codex_write, toml_edit
from localcodex.core.configure import ConfigureRequest, configure
from localcodex.errors import ConfigError
from localcodex.invocation import Invocation
from localcodex.wiring import Live

REPO = Path(__file__).resolve().parent.parent
CTX = ["--model", "qwen3-coder:30b", "--context", "32768"]

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: fall back to tomlkit for the independent parse
    tomllib = None


def load_toml(text: str) -> dict:
    return tomllib.loads(text) if tomllib else toml_edit.plain(toml_edit.parse(text, "x"))


@pytest.fixture
def home() -> Path:
    return Path(os.environ["CODEX_HOME"])


@pytest.fixture
def backups() -> codex_changes.BackupStore:
    from localcodex.paths import backups_dir

    return codex_changes.BackupStore(backups_dir())


def runs(store: codex_changes.BackupStore) -> int:
    return len(store.runs())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def fake_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Put a `codex` that prints the given version first on PATH (None: no codex on PATH at all)."""

    def install(version: str | None) -> None:
        folder = tmp_path / "fake-bin"
        folder.mkdir(exist_ok=True)
        if version is not None:
            script = folder / "codex"
            script.write_text(f"#!/bin/sh\necho 'codex-cli {version}'\n")
            script.chmod(0o755)
            monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
        else:
            monkeypatch.setenv("PATH", str(folder))

    return install


# ------------------------------------------------------------------------------------- what it writes


def test_profile_file_written_literally(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    result = cli("configure", *CTX)
    assert result.code == 0, result.output
    assert (home / "local_ollama.config.toml").read_text() == textwrap.dedent("""\
        # Codex profile written by `localcodex configure`. Use it with: codex -p local_ollama
        # Running localcodex again updates only the keys it wrote; your comments and other keys stay.

        model = "qwen3-coder:30b"
        model_provider = "local_ollama"
        model_context_window = 32768
        model_auto_compact_token_limit = 29491
        web_search = "disabled"

        [agents]
        enabled = false

        [features]
        unbounded_connection_retries = false

        [model_providers.local_ollama]
        name = "Ollama (localcodex)"
        base_url = "http://127.0.0.1:9/v1"
        wire_api = "responses"
        stream_idle_timeout_ms = 600000
        request_max_retries = 1
        stream_max_retries = 2
        """)
    assert stat.S_IMODE((home / "local_ollama.config.toml").stat().st_mode) == 0o600
    assert not (home / "config.toml").exists()  # the user's config is only touched with --default
    assert "codex -p local_ollama" in result.stdout
    assert "could not reach Ollama" in result.stderr


def test_host_becomes_base_url_ending_in_v1(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    assert cli("configure", *CTX, "--host", "http://gpu-box.lan:11434/").code == 0
    data = load_toml((home / "local_ollama.config.toml").read_text())
    assert data["model_providers"]["local_ollama"]["base_url"] == "http://gpu-box.lan:11434/v1"


def test_second_run_changes_nothing(cli, home: Path, backups, fake_codex) -> None:
    fake_codex("0.169.0")
    (home / "config.toml").write_text('# mine\nmodel = "gpt-5"\n')
    first = cli("configure", *CTX, "--default", "--json")
    assert first.code == 0 and first.json()["data"]["changed"] is True
    before, count = snapshot(home), runs(backups)
    second = cli("configure", *CTX, "--default", "--json")
    data = second.json()["data"]
    assert data["changed"] is False and data["backup_id"] is None
    assert all(not f["changed"] and f["diff"] == "" for f in data["files"])
    assert snapshot(home) == before and runs(backups) == count
    human = cli("configure", *CTX, "--default")
    assert "unchanged" in human.stdout and "backup" not in human.stderr


def test_new_inputs_change_only_the_owned_lines(cli, home: Path, backups, fake_codex) -> None:
    fake_codex("0.169.0")
    assert cli("configure", *CTX).code == 0
    profile = home / "local_ollama.config.toml"
    mine = '# my note\nmodel_reasoning_effort = "low"\n\n[agents]'
    profile.write_text(profile.read_text().replace("[agents]", mine))
    before = profile.read_text()
    assert cli("configure", "--model", "qwen3.5:27b", "--context", "65536").code == 0
    after = profile.read_text()
    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert changed == [
        '- model = "qwen3-coder:30b"', '+ model = "qwen3.5:27b"',
        "- model_context_window = 32768", "+ model_context_window = 65536",
        "- model_auto_compact_token_limit = 29491", "+ model_auto_compact_token_limit = 58982",
    ]
    assert runs(backups) == 2


def test_default_keeps_the_rest_of_config_toml(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    original = textwrap.dedent("""\
        # My Codex settings
        model = "gpt-5.5"          # the cloud one
        approval_policy = 'on-request'

        # Projects I trust
        [projects."/home/me/src/app"]
        trust_level = "trusted"

        [mcp_servers.docs]
        command = "npx"
        args = ["-y", "docs-server"]
        env = { TOKEN_FILE = "~/.docs" }

        [model_providers.openrouter]
        name = "OpenRouter"
        base_url = "https://openrouter.ai/api/v1"
        env_key = "OPENROUTER_API_KEY"
        """)
    (home / "config.toml").write_text(original)
    assert cli("configure", *CTX, "--default").code == 0
    assert (home / "config.toml").read_text() == textwrap.dedent("""\
        # My Codex settings
        model = "qwen3-coder:30b"          # the cloud one
        approval_policy = 'on-request'
        model_provider = "local_ollama"
        model_context_window = 32768
        model_auto_compact_token_limit = 29491
        web_search = "disabled"

        # Projects I trust
        [projects."/home/me/src/app"]
        trust_level = "trusted"

        [mcp_servers.docs]
        command = "npx"
        args = ["-y", "docs-server"]
        env = { TOKEN_FILE = "~/.docs" }

        [model_providers.openrouter]
        name = "OpenRouter"
        base_url = "https://openrouter.ai/api/v1"
        env_key = "OPENROUTER_API_KEY"

        [model_providers.local_ollama]
        name = "Ollama (localcodex)"
        base_url = "http://127.0.0.1:9/v1"
        wire_api = "responses"
        stream_idle_timeout_ms = 600000
        request_max_retries = 1
        stream_max_retries = 2

        [agents]
        enabled = false

        [features]
        unbounded_connection_retries = false
        """)


def test_env_key_and_headers_never_write_a_secret(cli, home: Path, fake_codex, monkeypatch) -> None:
    fake_codex("0.169.0")
    monkeypatch.setenv("GW_KEY", "sk-very-secret-value")
    result = cli("configure", *CTX, "--base-url", "https://llm.example.com/v1/", "--env-key", "GW_KEY",
                 "--header", "X-Team=platform", "--env-header", "X-User-Token=GW_USER")
    assert result.code == 0, result.output
    text = (home / "local_ollama.config.toml").read_text()
    provider = load_toml(text)["model_providers"]["local_ollama"]
    assert provider["base_url"] == "https://llm.example.com/v1"
    assert provider["env_key"] == "GW_KEY"
    assert provider["http_headers"] == {"X-Team": "platform"}
    assert provider["env_http_headers"] == {"X-User-Token": "GW_USER"}
    assert "sk-very-secret" not in text
    # a hosted server keeps Codex's retry defaults and its patient reconnects
    assert "request_max_retries" not in provider and "features" not in load_toml(text)


@pytest.mark.parametrize(("args", "needle"), [
    (["--env-key", "sk-abcdef0123456789abcdef"], "looks like a secret"),
    (["--env-key", "MY-KEY"], "not an environment variable name"),
    (["--header", "Authorization=Bearer sk-123"], "--env-header Authorization=VARIABLE_NAME"),
    (["--header", "X-Api-Key=abc"], "looks like it carries a secret"),
    (["--env-header", "X-Token=not a name"], "not an environment variable name"),
    (["--header", "novalue"], "expected NAME=VALUE"),
])
def test_secrets_and_bad_names_are_refused(cli, home: Path, args: list[str], needle: str) -> None:
    result = cli("configure", *CTX, *args)
    assert result.code == 2
    assert needle in result.stderr
    assert not list(home.iterdir())


def test_dry_run_prints_a_diff_and_writes_nothing(cli, home: Path, backups, fake_codex) -> None:
    fake_codex("0.169.0")
    (home / "config.toml").write_text('model = "gpt-5"\n')
    before = snapshot(home)
    result = cli("configure", *CTX, "--default", "--dry-run")
    assert result.code == 0, result.output
    assert snapshot(home) == before and runs(backups) == 0
    assert f"--- {home / 'config.toml'}\n+++ {home / 'config.toml'}\n" in result.stdout
    assert '-model = "gpt-5"\n+model = "qwen3-coder:30b"\n' in result.stdout
    assert f"--- /dev/null\n+++ {home / 'local_ollama.config.toml'}\n" in result.stdout
    assert "dry run: nothing was written" in result.stderr
    # the printed diff applies cleanly and gives what a real run writes
    patch = shutil.which("patch")
    if patch:
        work = home.parent / "patched"
        shutil.copytree(home, work)
        proc = subprocess.run([patch, "-p0", "-d", "/", "--dry-run"], input=result.stdout, text=True,
                              capture_output=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_json_envelope(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    result = cli("configure", *CTX, "--json")
    assert result.code == 0
    doc = result.json()
    assert doc["command"] == "configure" and doc["status"] == "ok"
    data = doc["data"]
    assert data["profile"] == "local_ollama" and data["model"] == "qwen3-coder:30b"
    assert data["context_window"] == 32768 and data["auto_compact_token_limit"] == 29491
    assert data["form"] == "profile_file" and data["codex_version"] == "0.169.0"
    assert data["run"] == "codex -p local_ollama"
    assert [f["role"] for f in data["files"]] == ["profile"] and data["files"][0]["created"] is True
    assert any("could not reach Ollama" in w for w in doc["warnings"])


# ------------------------------------------------------------------------------------- names and places


@pytest.mark.parametrize("reserved", ["openai", "ollama", "lmstudio", "amazon-bedrock", "amazon-bedrock-runtime",
                                      "gcp", "OpenAI"])
def test_reserved_provider_ids_are_refused(cli, home: Path, reserved: str) -> None:
    result = cli("configure", *CTX, "--provider-id", reserved, "--json")
    assert result.code == 5
    error = result.json()["errors"][0]
    assert error["code"] == "reserved_id" and reserved in error["message"]
    assert not list(home.iterdir())


@pytest.mark.parametrize("name", ["a.b", "../x", "a b", "-x", "über", "x" * 65, ""])
def test_profile_names_codex_rejects_are_refused(cli, home: Path, name: str) -> None:
    result = cli("configure", *CTX, f"--profile={name}")
    assert result.code == 2
    assert "invalid profile name" in result.stderr and "letters, digits" in result.stderr
    assert not list(home.iterdir())


def test_project_local_codex_folder_is_refused(cli, tmp_path: Path, home: Path) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".codex").mkdir()
    result = cli("configure", *CTX, "--codex-home", project / ".codex")
    assert result.code == 5
    assert "ignores provider settings there" in result.stderr
    assert not list((project / ".codex").iterdir()) and not list(home.iterdir())


def test_legacy_profiles_table_blocks_the_profile_file(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    original = '[profiles.local_ollama]\nmodel = "old"\n'
    (home / "config.toml").write_text(original)
    result = cli("configure", *CTX)
    assert result.code == 5
    assert "[profiles.local_ollama]" in result.stderr and "refuses" in result.stderr
    assert (home / "config.toml").read_text() == original
    assert not (home / "local_ollama.config.toml").exists()


def test_old_codex_gets_the_profiles_table(cli, home: Path, fake_codex) -> None:
    fake_codex("0.120.0")
    (home / "config.toml").write_text('model = "gpt-5"\n')
    result = cli("configure", *CTX, "--json")
    assert result.code == 0, result.output
    doc = result.json()
    assert doc["data"]["form"] == "profiles_table"
    assert any("predates profile files" in w for w in doc["warnings"])
    data = load_toml((home / "config.toml").read_text())
    assert data["model"] == "gpt-5"
    assert data["profiles"]["local_ollama"] == {
        "model": "qwen3-coder:30b", "model_provider": "local_ollama", "web_search": "disabled"}
    assert data["model_providers"]["local_ollama"]["wire_api"] == "responses"
    assert not (home / "local_ollama.config.toml").exists()


def test_without_codex_the_current_form_is_written_and_said(cli, home: Path, fake_codex) -> None:
    fake_codex(None)
    result = cli("configure", *CTX, "--json")
    assert result.code == 0
    assert result.json()["data"]["codex_version"] is None
    assert any("Codex is not installed" in w for w in result.json()["warnings"])
    assert (home / "local_ollama.config.toml").exists()


# ------------------------------------------------------------------------------------- the model


def test_context_read_from_the_models_num_ctx(cli, home: Path, emulator_factory, fake_codex) -> None:
    from emulator import FakeModel

    fake_codex("0.169.0")
    emu = emulator_factory(installed=[FakeModel(name="coder:32k", parameters={"num_ctx": 32768})])
    result = cli("configure", "--host", emu.url, "--json")  # the only model installed: no --model needed
    assert result.code == 0, result.output
    data = result.json()["data"]
    assert (data["model"], data["context_window"], data["context_source"]) == ("coder:32k", 32768, "model num_ctx")
    assert data["base_url"] == f"{emu.url}/v1"
    assert [(r.method, r.path) for r in emu.requests if r.path.startswith("/api/show")] == [("POST", "/api/show")]


def test_model_without_num_ctx_needs_context(cli, home: Path, emulator_factory, fake_codex) -> None:
    from emulator import FakeModel

    fake_codex("0.169.0")
    emu = emulator_factory(installed=[FakeModel(name="plain:7b"), FakeModel(name="other:1b")])
    missing = cli("configure", "--host", emu.url)
    assert missing.code == 2 and "--model is required" in missing.stderr and "plain:7b" in missing.stderr
    result = cli("configure", "--host", emu.url, "--model", "plain:7b")
    assert result.code == 2
    assert "no num_ctx parameter" in result.stderr and "--context" in result.stderr
    assert not list(home.iterdir())
    absent = cli("configure", "--host", emu.url, "--model", "nothere:1b", "--context", "8192")
    assert absent.code == 4 and "not on the Ollama server" in absent.stderr


def test_model_without_tools_is_written_with_a_warning(cli, emulator_factory, fake_codex) -> None:
    from emulator import FakeModel

    fake_codex("0.169.0")
    emu = emulator_factory(installed=[FakeModel(name="chat:4b", capabilities=["completion"],
                                                parameters={"num_ctx": 8192})])
    result = cli("configure", "--host", emu.url, "--model", "chat:4b", "--json")
    assert result.code == 0
    warnings = result.json()["warnings"]
    assert any("does not support tool calling" in w for w in warnings)
    assert any("8192-token window leaves little room" in w for w in warnings)
    roomy = cli("configure", "--host", emu.url, "--model", "chat:4b", "--context", "32768", "--json")
    assert not any("little room" in w for w in roomy.json()["warnings"])
    assert any("differs from the num_ctx 8192" in w for w in roomy.json()["warnings"])


def test_model_catalog_with_instructions_file(cli, home: Path, tmp_path: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    prompt = tmp_path / "prompt.md"
    prompt.write_text("You are a careful coding agent.\n")
    result = cli("configure", *CTX, "--model-catalog", "--instructions", prompt, "--json")
    assert result.code == 0, result.output
    catalog_path = home / "local_ollama.model-catalog.json"
    entry = json.loads(catalog_path.read_text())["models"][0]
    assert entry["slug"] == "qwen3-coder:30b" and entry["context_window"] == 32768
    assert entry["base_instructions"] == "You are a careful coding agent.\n"
    profile = load_toml((home / "local_ollama.config.toml").read_text())
    assert profile["model_catalog_json"] == str(catalog_path)
    assert any("replaces Codex's built-in model list" in w for w in result.json()["warnings"])
    # a plain configure keeps the catalog (and its prompt), as setup wrote it; --no-model-catalog removes the
    # key again (the catalog file itself stays, unused)
    before = (home / "local_ollama.config.toml").read_bytes()
    kept = cli("configure", *CTX, "--json")
    assert kept.code == 0, kept.output
    assert kept.json()["data"]["changed"] is False
    assert (home / "local_ollama.config.toml").read_bytes() == before
    assert cli("configure", *CTX, "--no-model-catalog").code == 0
    assert "model_catalog_json" not in load_toml((home / "local_ollama.config.toml").read_text())


def test_model_catalog_without_codex_needs_instructions(cli, home: Path, fake_codex) -> None:
    fake_codex(None)
    result = cli("configure", *CTX, "--model-catalog")
    assert result.code == 2 and "--instructions FILE" in result.stderr
    assert not list(home.iterdir())


# ------------------------------------------------------------------------------------- faults


def test_malformed_toml_is_reported_with_line_and_column(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    broken = b'model = "gpt-5"\n\n[tui\ntheme = "dark"\n'
    (home / "config.toml").write_bytes(broken)
    result = cli("configure", *CTX, "--default", "--json")
    assert result.code == 5
    error = result.json()["errors"][0]
    assert error["message"].startswith(f"{home / 'config.toml'}:3:")
    assert re.search(r"config\.toml:3:\d+: invalid TOML", error["message"])
    assert "line 3, column" in error["hint"]
    assert (home / "config.toml").read_bytes() == broken
    assert not (home / "local_ollama.config.toml").exists()


def test_malformed_profile_file_is_left_alone(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    broken = b'model = "x"\nmodel = "y"\n'
    (home / "local_ollama.config.toml").write_bytes(broken)
    result = cli("configure", *CTX)
    assert result.code == 5 and "local_ollama.config.toml" in result.stderr
    assert (home / "local_ollama.config.toml").read_bytes() == broken


def test_layout_the_editor_cannot_keep_is_refused(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    split = (b'[model_providers.a.h]\nname = "a"\n\n[[model_providers.arr]]\nname = "s"\n\n'
             b'[model_providers.a.g]\nname = "b"\n')
    (home / "config.toml").write_bytes(split)
    result = cli("configure", *CTX, "--default")
    import tomlkit

    if tomlkit.dumps(tomlkit.parse(split.decode())) == split.decode():
        # tomlkit 0.15.3 and later keep this layout: then the file is edited, every byte outside our keys kept
        assert result.code == 0, result.output
        written = (home / "config.toml").read_bytes()
        blocks = [block + b"\n" for block in split.strip().split(b"\n\n")]
        places = [written.find(b) for b in blocks]
        assert -1 not in places and places == sorted(places), written  # nothing moved, nothing lost
        return
    assert result.code == 5 and "cannot edit this file without moving parts of it" in result.stderr
    assert (home / "config.toml").read_bytes() == split
    assert not (home / "local_ollama.config.toml").exists()


def test_split_layout_outside_the_edited_tables_is_edited(cli, home: Path, fake_codex) -> None:
    """Tables localcodex does not touch are kept as text, so their layout no longer blocks an edit."""
    fake_codex("0.169.0")
    split = '[model_providers.a]\nname = "a"\n\n[[skills]]\nname = "s"\n\n[model_providers.b]\nname = "b"\n'
    (home / "config.toml").write_text(split)
    assert cli("configure", *CTX, "--default").code == 0
    new = (home / "config.toml").read_text()
    assert '[[skills]]\nname = "s"\n\n[model_providers.b]\nname = "b"\n' in new
    assert set(load_toml(new)["model_providers"]) == {"a", "b", "local_ollama"}


def test_symlinked_config_is_written_through(cli, home: Path, tmp_path: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "codex.toml").write_text('# tracked in git\nmodel = "gpt-5"\n')
    (home / "config.toml").symlink_to(dotfiles / "codex.toml")
    result = cli("configure", *CTX, "--default", "--json")
    assert result.code == 0, result.output
    assert (home / "config.toml").is_symlink()
    assert load_toml((dotfiles / "codex.toml").read_text())["model"] == "qwen3-coder:30b"
    assert (dotfiles / "codex.toml").read_text().startswith("# tracked in git\n")
    assert any("is a symlink: wrote its target" in w for w in result.json()["warnings"])
    assert cli("configure", "--restore").code == 0
    assert (home / "config.toml").is_symlink()
    assert (dotfiles / "codex.toml").read_text() == '# tracked in git\nmodel = "gpt-5"\n'


def test_dangling_symlink_is_refused(cli, home: Path, tmp_path: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    (home / "config.toml").symlink_to(tmp_path / "nowhere" / "codex.toml")
    result = cli("configure", *CTX, "--default")
    assert result.code == 5 and "symlink" in result.stderr
    assert (home / "config.toml").is_symlink() and not (tmp_path / "nowhere").exists()
    assert not (home / "local_ollama.config.toml").exists()


def _read_only_runner(folder: Path) -> list[str] | None:
    """A command prefix under which `folder` is read-only even for root (a read-only bind mount in a private
    mount namespace), or [] when plain permissions suffice, or None when neither is possible here."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    unshare = shutil.which("unshare")
    if not unshare:
        return None
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    return [unshare, "-rm", "sh", "-c",
            f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"', "sh"]


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX permissions")
def test_read_only_folder_fails_cleanly(home: Path, backups, fake_codex) -> None:
    fake_codex("0.169.0")
    original = b'model = "gpt-5"\n'
    (home / "config.toml").write_bytes(original)
    prefix = _read_only_runner(home)
    if prefix is None:
        pytest.skip("cannot make a folder read-only for root here (no unshare)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        proc = subprocess.run([*prefix, sys.executable, "-m", "localcodex", "configure", *CTX, "--default"],
                              capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        home.chmod(0o755)
    assert proc.returncode == 5, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "cannot write" in lines[0]
    assert "Read-only file system" in lines[0] or "Permission denied" in lines[0]
    assert "Traceback" not in proc.stderr
    assert (home / "config.toml").read_bytes() == original
    assert not (home / "local_ollama.config.toml").exists()
    assert runs(backups) == 0  # the run that could not write is not left in the index


KILL_SCRIPT = """
import os, signal, sys
from localcodex.adapters import codex_write
calls = {"n": 0}
def crash(tmp, path):
    calls["n"] += 1
    if calls["n"] == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
codex_write._before_replace = crash
from localcodex.cli import main
main(["configure", "--model", "qwen3-coder:30b", "--context", "32768", "--default"])
"""


@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGKILL")
@pytest.mark.parametrize("kill_at", [1, 2, 3, 4])
def test_killed_mid_write_leaves_old_or_new_never_partial(home: Path, tmp_path: Path, kill_at: int,
                                                          fake_codex) -> None:
    fake_codex("0.169.0")
    old_config = '# keep me\nmodel = "gpt-5"\n\n[tui]\ntheme = "dark"\n'
    (home / "config.toml").write_text(old_config)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    # the same run, not killed, in a copy: what "new" looks like
    reference = tmp_path / "reference"
    shutil.copytree(home, reference)
    done = subprocess.run([sys.executable, "-c", KILL_SCRIPT, "0"], env={**env, "CODEX_HOME": str(reference)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(kill_at)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    for name in ("config.toml", "local_ollama.config.toml"):
        now = (home / name).read_text() if (home / name).exists() else None
        old = old_config if name == "config.toml" else None
        assert now in (old, (reference / name).read_text()), name
    # a later run cleans up the temp file the killed one left and completes the change
    assert subprocess.run([sys.executable, "-c", KILL_SCRIPT, "0"], env=env, timeout=60).returncode == 0
    assert sorted(p.name for p in home.iterdir()) == ["config.toml", "local_ollama.config.toml"]
    assert snapshot(home) == snapshot(reference)


STRESS_SCRIPT = """
import sys
from pathlib import Path
from localcodex.adapters import codex_write
target = Path(sys.argv[1])
texts = [("a" * 4000 + "\\n") * 200, ("b" * 3000 + "\\n") * 300]
i = 0
print("ready", flush=True)
while True:
    codex_write.write_atomic(target, texts[i % 2])
    i += 1
"""


@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGKILL")
def test_random_kills_never_leave_a_partial_file(tmp_path: Path) -> None:
    import random

    folder = tmp_path / "stress"
    folder.mkdir()
    target = folder / "config.toml"
    texts = {("a" * 4000 + "\n") * 200, ("b" * 3000 + "\n") * 300}
    target.write_text(next(iter(texts)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(8)
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", STRESS_SCRIPT, str(target)], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.kill()
        proc.wait()
        assert target.read_text() in texts
    leftovers = [p.name for p in folder.iterdir() if p.name != "config.toml"]
    codex_write.write_atomic(target, "done\n")  # the next write sweeps the killed writers' temp files
    assert [p.name for p in folder.iterdir()] == ["config.toml"]
    assert leftovers == [] or all(codex_write.TEMP_MARK in name for name in leftovers)


def test_existing_file_mode_is_kept(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    (home / "config.toml").write_text('model = "gpt-5"\n')
    (home / "config.toml").chmod(0o640)
    assert cli("configure", *CTX, "--default").code == 0
    assert stat.S_IMODE((home / "config.toml").stat().st_mode) == 0o640


# ------------------------------------------------------------------------------------- restore


def test_restore_round_trip(cli, home: Path, backups, fake_codex) -> None:
    fake_codex("0.169.0")
    original = b'# mine\r\nmodel = "gpt-5"\r\n'
    (home / "config.toml").write_bytes(original)
    assert cli("configure", *CTX, "--default").code == 0
    assert (home / "local_ollama.config.toml").exists()
    assert b"\r\n" in (home / "config.toml").read_bytes() and b"\n\n" not in (home / "config.toml").read_bytes()
    dry = cli("configure", "--restore", "--dry-run")
    assert dry.code == 0 and "would restore" in dry.stdout and (home / "local_ollama.config.toml").exists()
    result = cli("configure", "--restore")
    assert result.code == 0, result.output
    assert (home / "config.toml").read_bytes() == original
    assert not (home / "local_ollama.config.toml").exists()  # it did not exist before: restore deletes it
    assert "deleted" in result.stdout and "restored" in result.stdout
    again = cli("configure", "--restore")
    assert again.code == 4 and "no localcodex backup to restore" in again.stderr


def test_restore_undoes_one_run_at_a_time(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    assert cli("configure", *CTX).code == 0
    first = (home / "local_ollama.config.toml").read_text()
    assert cli("configure", "--model", "qwen3.5:27b", "--context", "65536").code == 0
    assert cli("configure", "--restore").code == 0
    assert (home / "local_ollama.config.toml").read_text() == first
    assert cli("configure", "--restore").code == 0
    assert not (home / "local_ollama.config.toml").exists()


def test_restore_does_not_discard_later_hand_edits(cli, home: Path, fake_codex) -> None:
    fake_codex("0.169.0")
    assert cli("configure", *CTX).code == 0
    profile = home / "local_ollama.config.toml"
    profile.write_text(profile.read_text() + 'model_reasoning_effort = "high"\n')
    result = cli("configure", "--restore")
    assert result.code == 5 and "changed since localcodex wrote it" in result.stderr and "--force" in result.stderr
    assert profile.exists()
    assert cli("configure", "--restore", "--force").code == 0
    assert not profile.exists()


# ------------------------------------------------------------------------------------- the lock


def test_lock_contention_waits_then_fails_clearly(cli, home: Path, monkeypatch) -> None:
    monkeypatch.setattr(codex_lock, "LOCK_TIMEOUT", 0.3)
    with codex_lock.locked([home / "config.toml"]):
        started = time.monotonic()
        result = cli("configure", *CTX, "--json")
        waited = time.monotonic() - started
    assert result.code == 5
    error = result.json()["errors"][0]
    assert error["code"] == "config_locked" and f"process {os.getpid()}" in error["message"]
    assert waited >= 0.3
    assert not list(home.iterdir())
    assert cli("configure", *CTX).code == 0  # released: the next run goes through


def test_lock_serialises_concurrent_runs(home: Path, fake_codex) -> None:
    """Two processes configure different profiles and both change config.toml (--default): neither change
    may be lost, which a read-modify-write without the lock would do."""
    fake_codex("0.169.0")
    (home / "config.toml").write_text('# shared\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "localcodex", "configure", "--model", f"m{i}:1b", "--context",
                          "8192", "--profile", f"p{i}", "--provider-id", f"prov{i}", "--default"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    assert all(p.wait(timeout=60) == 0 for p in procs), [p.stderr.read() for p in procs if p.stderr]
    data = load_toml((home / "config.toml").read_text())
    assert set(data["model_providers"]) == {"prov0", "prov1", "prov2", "prov3"}
    assert all((home / f"p{i}.config.toml").exists() for i in range(4))


# ------------------------------------------------------------------------------------- the codex adapter


@pytest.mark.skipif(sys.platform.startswith("win"), reason="process groups")
def test_run_exec_timeout_kills_the_whole_codex_process_tree(tmp_path: Path, home: Path) -> None:
    """`codex` is a Node wrapper: a timeout must not leave the native child running (it would retry forever)."""
    pid_file = tmp_path / "child.pid"
    fake = tmp_path / "codex"
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pid_file}\nwait\n")
    fake.chmod(0o755)
    import threading

    box: list[codex_cli.ExecResult] = []
    worker = threading.Thread(target=lambda: box.append(codex_cli.run_exec(
        "hi", profile="p", codex_home=home, timeout=1.0, codex=fake, cwd=tmp_path)), daemon=True)
    worker.start()
    worker.join(60)
    if not box:  # still waiting for output that the surviving child keeps open
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        pytest.fail("run_exec did not return after its timeout: the child of codex kept running")
    result = box[0]
    assert result.timed_out and result.seconds < 30
    assert result.argv[1:] == ("exec", "-p", "p", "--skip-git-repo-check", "hi")
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child of codex outlived the timeout")


# ------------------------------------------------------------------------------------- layers for doctor


def test_load_codex_layers_in_codex_order(home: Path, tmp_path: Path) -> None:
    (home / "config.toml").write_text('model = "a"\n')
    (home / "work.config.toml").write_text('model = "b"\n')
    project = tmp_path / "repo"
    (project / ".git").mkdir(parents=True)
    (project / ".codex").mkdir()
    (project / ".codex" / "config.toml").write_text("model_providers = \n")
    sub = project / "pkg"
    (sub / ".codex").mkdir(parents=True)
    (sub / ".codex" / "config.toml").write_text('model = "c"\n')
    system = tmp_path / "etc-codex.toml"
    system.write_text('approval_policy = "never"\n')
    layers = codex_config.load_codex_layers(home, sub, profile="work", system=system)
    assert [(layer.kind, layer.path) for layer in layers] == [
        ("system", system), ("user", home / "config.toml"), ("profile", home / "work.config.toml"),
        ("project", project / ".codex" / "config.toml"), ("project", sub / ".codex" / "config.toml")]
    assert layers[1].data == {"model": "a"} and layers[2].data == {"model": "b"}
    assert layers[3].data is None and layers[3].error and ":1:" in layers[3].error
    assert "ignores" in (layers[4].note or "")
    missing = codex_config.load_codex_layers(home, tmp_path, profile="nosuch", system=tmp_path / "none.toml")
    assert [layer.kind for layer in missing] == ["user", "profile"]
    assert not missing[1].exists and missing[1].error is None


# ------------------------------------------------------------------------------------- property tests

OWNED_LINE = re.compile(
    r"^\s*(model|model_provider|model_context_window|model_auto_compact_token_limit|web_search|enabled"
    r"|unbounded_connection_retries|name|base_url|wire_api|stream_idle_timeout_ms|request_max_retries"
    r"|stream_max_retries)\s*=|^\s*\[(agents|features|model_providers\.local_ollama)\]\s*$|^\s*$")

comment = st.sampled_from(["# a comment", "#", "   # indented comment", "# [profiles.x] was here"])
top_lines = st.sampled_from([
    'approval_policy = "never"', "approval_policy='on-request'", 'model   =   "gpt-5"   # old model',
    "model = 'gpt-4.1'", 'model_provider = "openrouter"', "model_context_window = 200000",
    'sandbox_mode = "workspace-write"', 'notify = ["notify-send", "codex"]',
    'tui = { theme = "dark", animations = false }', 'shell_environment_policy.inherit = "all"',
    'instructions = """\nline one\n  line two\n"""', "hide_agent_reasoning = true",
    "web_search = 'live'", "model_reasoning_effort = \"high\"",
])
tables = st.sampled_from([
    '[tui]\ntheme = "light"', '[projects."/home/u/src"]\ntrust_level = "trusted"',
    '[mcp_servers.docs]\ncommand = "npx"\nargs = ["-y", "x"]\nenv = { A = "1" }',
    "[[skills]]\nname = 'one'\n\n[[skills]]\nname = 'two'",
    '[model_providers.openrouter]\nname = "OpenRouter"\nbase_url = "https://openrouter.ai/api/v1"',
    '[model_providers.local_ollama]\nname = "Old"\nbase_url = "http://old:11434/v1"  # stale\nextra = 1',
    '[agents]\nmax_threads = 3', "[agents]\nenabled = true # mine", "[features]\nplugins = false",
    '[features]\nunbounded_connection_retries = true\nmemories = true',
    "[history]\npersistence = 'none'\n# trailing comment in a table",
    '[otel]\nexporter = { otlp-http = { endpoint = "http://x", protocol = "json" } }',
])


@st.composite
def config_texts(draw) -> str:
    lines: list[str] = []
    seen_top: set[str] = set()
    for line in draw(st.lists(st.one_of(top_lines, comment), max_size=6)):
        key = line.split("=")[0].strip().split(".")[0] if "=" in line else None
        if key in seen_top:
            continue
        if key:
            seen_top.add(key)
        lines.append(line)
        lines += [""] * draw(st.integers(0, 1))
    seen_tables: set[str] = set()
    for table in draw(st.lists(tables, max_size=5)):
        header = table.split("\n")[0]
        root = header.strip("[]").split(".")[0]
        if header in seen_tables or (root in seen_top):
            continue
        seen_tables.add(header)
        lines += [""] * draw(st.integers(0, 2))
        if draw(st.booleans()):
            lines.append(draw(comment))
        lines.append(table)
    text = "\n".join(lines)
    if draw(st.booleans()):
        text += "\n"
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return text


def _owned_only_changes(old: str, new: str) -> list[str]:
    """Lines that changed and are not owned keys / owned headers / blank lines (should be none)."""
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    if old_lines and not old_lines[-1].endswith("\n") and len(new_lines) >= len(old_lines):
        old_lines[-1] += "\r\n" if "\r\n" in new else "\n"  # a missing final newline may be added
    bad = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        bad += [f"-{line!r}" for line in old_lines[i1:i2] if not OWNED_LINE.match(line)]
        bad += [f"+{line!r}" for line in new_lines[j1:j2] if not OWNED_LINE.match(line)]
    return bad


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=config_texts())
@example(text='[features]\nplugins = false\n[agents]\nenabled = true # mine')  # no final newline, a comment
@example(text="[model_providers.x]\nname = 'x'\n[[skills]]\nname = 'one'\n[model_providers.local_ollama]\nextra = 1\n")
def test_property_only_owned_keys_change_and_rerun_is_noop(text: str, home: Path, backups, monkeypatch) -> None:
    monkeypatch.setattr(codex_cli, "codex_info", lambda *a, **k: codex_cli.CodexInfo(
        Path("codex"), (0, 169, 0), "codex-cli 0.169.0"))
    for leftover in home.iterdir():
        leftover.unlink()
    config = home / "config.toml"
    config.write_bytes(text.encode())
    req = ConfigureRequest(model="qwen3-coder:30b", context=32768, make_default=True)
    try:
        first = configure(req, Live(Invocation.build()))
    except ConfigError as exc:  # a layout the TOML editor cannot keep: refused, and the file is untouched
        assert exc.code == "config_layout"
        assert config.read_bytes() == text.encode() and not (home / "local_ollama.config.toml").exists()
        return
    new = config.read_bytes().decode()
    # 1. semantics: the owned keys have the new values, everything else parses to what it was
    expected = load_toml(text)
    expected.update(model="qwen3-coder:30b", model_provider="local_ollama", model_context_window=32768,
                    model_auto_compact_token_limit=29491, web_search="disabled")
    expected.setdefault("agents", {})["enabled"] = False
    expected.setdefault("features", {})["unbounded_connection_retries"] = False
    expected.setdefault("model_providers", {}).setdefault("local_ollama", {}).update(
        name="Ollama (localcodex)", base_url="http://127.0.0.1:9/v1", wire_api="responses",
        stream_idle_timeout_ms=600000, request_max_retries=1, stream_max_retries=2)
    assert load_toml(new) == expected
    # 2. bytes: every line outside the owned keys is unchanged, in order
    assert _owned_only_changes(text, new) == []
    # 3. CRLF files stay CRLF
    if "\r\n" in text:
        assert new.count("\n") == new.count("\r\n")
    # 4. the second run is a no-op: no diff, no new backup, same bytes
    count = runs(backups)
    second = configure(req, Live(Invocation.build()))
    assert not second.changed and second.backup_id is None and all(f.diff == "" for f in second.files)
    assert config.read_bytes().decode() == new and runs(backups) == count
    assert first.changed == (text != new) or first.files[0].created

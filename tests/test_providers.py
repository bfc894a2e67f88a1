"""Provider templates (`profiles/*.toml`) and `localcodex provider list|show|add`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from localcodex.adapters import toml_edit
from localcodex.core import providers
from localcodex.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = ["company-gateway", "glm", "llama-cpp", "lm-studio", "local-ollama", "mistral", "ollama-remote",
             "openrouter"]


def load(path: Path) -> dict:
    return toml_edit.plain(toml_edit.parse(path.read_text(), path))


@pytest.fixture
def home() -> Path:
    return Path(os.environ["CODEX_HOME"])


@pytest.fixture(autouse=True)
def codex_0169(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`codex --version` answers 0.169.0 (the form written must not depend on what this machine has)."""
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    (folder / "codex").write_text("#!/bin/sh\necho 'codex-cli 0.169.0'\n")
    (folder / "codex").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_every_template_loads_and_is_listed(cli) -> None:
    listing = providers.list_templates()
    assert [t.name for t in listing.templates] == TEMPLATES
    for t in listing.templates:
        assert t.description and "model" in t.required
        assert set(t.provider) <= providers._MAPPED | providers.PASS_THROUGH
        assert "lmstudio" not in (t.defaults.get("provider_id"), t.name.replace("-", "_"))
        assert not any(isinstance(v, str) and v.startswith("sk-") for v in t.defaults.values())
    result = cli("provider", "list")
    assert result.code == 0
    assert all(name in result.stdout for name in TEMPLATES)
    doc = cli("provider", "list", "--json").json()
    assert [t["name"] for t in doc["data"]["templates"]] == TEMPLATES


def test_show_prints_variables_and_the_file(cli) -> None:
    result = cli("provider", "show", "company-gateway")
    assert result.code == 0
    assert "needs: base_url, env_key (default 'GATEWAY_API_KEY'), model, team" in result.stdout
    assert 'http_headers = { "X-Team" = "{team}" }' in result.stdout  # the file, unwrapped
    missing = cli("provider", "show", "nosuch")
    assert missing.code == 4 and "glm" in missing.stderr


def test_add_glm_writes_a_profile_without_secrets(cli, home: Path, monkeypatch) -> None:
    monkeypatch.setenv("GLM_API_KEY", "sk-glm-secret-123")
    result = cli("provider", "add", "glm", "--base-url", "https://api.z.ai/api/v1", "--env-key", "GLM_API_KEY",
                 "--model", "glm-5.2", "--json")
    assert result.code == 0, result.output
    data = result.json()["data"]
    assert data["result"]["run"] == "codex -p glm"
    text = (home / "glm.config.toml").read_text()
    assert "sk-glm-secret" not in text
    profile = load(home / "glm.config.toml")
    assert profile["model"] == "glm-5.2" and profile["model_provider"] == "glm"
    assert profile["model_context_window"] == 200000
    assert profile["model_providers"]["glm"] == {
        "name": "GLM", "base_url": "https://api.z.ai/api/v1", "wire_api": "responses", "env_key": "GLM_API_KEY",
        "stream_idle_timeout_ms": 300000,
        "env_key_instructions": "Create a key in the Z.ai console and export GLM_API_KEY=<key>.",
    }
    assert "features" not in profile  # a hosted API keeps Codex's patient reconnects
    assert "Codex speaks only the Responses API" in data["notes"]


def test_add_uses_the_configure_writer(cli, home: Path) -> None:
    """Same backups, same idempotency, same restore as `configure`."""
    args = ["provider", "add", "openrouter", "--model", "qwen/qwen3-coder"]
    assert cli(*args).code == 0
    second = cli(*args, "--json")
    assert second.json()["data"]["result"]["changed"] is False
    dry = cli("provider", "add", "openrouter", "--model", "z-ai/glm-4.6", "--dry-run")
    assert '-model = "qwen/qwen3-coder"\n+model = "z-ai/glm-4.6"' in dry.stdout
    restored = cli("configure", "--restore")
    assert restored.code == 0 and "provider add openrouter" in restored.stdout
    assert not (home / "openrouter.config.toml").exists()


def test_gateway_headers_split_static_and_secret(cli, home: Path) -> None:
    missing = cli("provider", "add", "company-gateway", "--model", "gpt-oss-120b")
    assert missing.code == 2
    assert "needs base_url, team" in missing.stderr and "--base-url … --set team=…" in missing.stderr
    result = cli("provider", "add", "company-gateway", "--model", "gpt-oss-120b", "--base-url",
                 "https://llm.corp.example/v1", "--set", "team=platform")
    assert result.code == 0, result.output
    provider = load(home / "gateway.config.toml")["model_providers"]["gateway"]
    assert provider["env_key"] == "GATEWAY_API_KEY"
    assert provider["http_headers"] == {"X-Team": "platform"}
    assert provider["env_http_headers"] == {"X-User-Token": "GATEWAY_USER_TOKEN"}


def test_local_servers_need_their_context(cli, home: Path, dead_url: str) -> None:
    result = cli("provider", "add", "lm-studio", "--model", "qwen3-coder")
    assert result.code == 2 and "needs context" in result.stderr and "--context …" in result.stderr
    # llama-server states its context (tests/test_llama_server.py); one that cannot be asked leaves it unset
    unknown = cli("provider", "add", "llama-cpp", "--model", "qwen3-coder", "--base-url", f"{dead_url}/v1",
                  "--profile", "unknown_ctx")
    assert unknown.code == 0 and "does not state its context" in unknown.stderr
    assert "model_context_window" not in load(home / "unknown_ctx.config.toml")
    assert cli("provider", "add", "llama-cpp", "--model", "qwen3-coder", "--context", "32768").code == 0
    profile = load(home / "llama_cpp.config.toml")
    assert profile["model_context_window"] == 32768
    assert profile["model_providers"]["llama_cpp"]["base_url"] == "http://127.0.0.1:8080/v1"
    assert profile["model_providers"]["llama_cpp"]["request_max_retries"] == 1  # local: fail fast
    assert profile["features"] == {"unbounded_connection_retries": False}
    assert cli("provider", "add", "lm-studio", "--model", "qwen3-coder", "--context", "16384").code == 0
    assert load(home / "lm_studio.config.toml")["model_provider"] == "lm_studio"


def test_ollama_templates_read_the_context_from_the_server(cli, home: Path, emulator_factory) -> None:
    from emulator import FakeModel

    emu = emulator_factory(installed=[FakeModel(name="coder:32k", parameters={"num_ctx": 32768})])
    needs_host = cli("provider", "add", "ollama-remote", "--model", "coder:32k")
    assert needs_host.code == 2 and "--host" in needs_host.stderr
    result = cli("provider", "add", "ollama-remote", "--host", emu.url, "--model", "coder:32k")
    assert result.code == 0, result.output
    profile = load(home / "ollama_remote.config.toml")
    assert profile["model_context_window"] == 32768
    assert profile["model_providers"]["ollama_remote"]["base_url"] == f"{emu.url}/v1"
    assert profile["model_providers"]["ollama_remote"]["name"] == f"Ollama on {emu.url}"
    assert cli("configure", "--host", emu.url, "--model", "coder:32k").code == 0
    same = cli("provider", "add", "local-ollama", "--host", emu.url, "--model", "coder:32k", "--json")
    assert same.code == 0 and same.json()["data"]["result"]["changed"] is False  # the same profile as configure


def test_reserved_and_unknown_names(cli, home: Path) -> None:
    reserved = cli("provider", "add", "lm-studio", "--model", "m", "--context", "8192", "--provider-id", "lmstudio")
    assert reserved.code == 5 and "reserved" in reserved.stderr
    unknown = cli("provider", "add", "../glm", "--model", "m")
    assert unknown.code == 4
    assert not list(home.iterdir())


def test_a_broken_template_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[template]\ndescription = "x"\nrequired = ["model"]\n[provider]\napi_key = "{key}"\n')
    with pytest.raises(ConfigError, match=r"unknown \[provider\] keys \['api_key'\]"):
        providers.load_template(bad)


def test_templates_ship_in_the_wheel(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    out = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wheel = next(out.glob("localcodex-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n for n in names if n.startswith("localcodex/profiles/")) == [
        f"localcodex/profiles/{t}.toml" for t in TEMPLATES]
    # installed outside the repository (offline: its dependencies are this environment's), the console script
    # works and finds the templates and the catalog inside the installed package
    prefix = tmp_path / "installed"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--prefix",
                           str(prefix), str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    site = next(prefix.glob("lib/python*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    script = prefix / "bin" / "localcodex"
    for args, expected in ((["--version"], "localcodex "), (["--help"], "setup"), (["provider", "list"], "glm")):
        run = subprocess.run([str(script), *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
        assert run.returncode == 0 and expected in run.stdout, run.stderr
    where = subprocess.run([sys.executable, "-c", "import localcodex, sys; print(localcodex.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, check=True).stdout
    assert where.startswith(str(site)), where

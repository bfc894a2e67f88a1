"""The profile `configure` writes, proven by the client it is for: the real Codex CLI against the emulator.

Every run here gets a CODEX_HOME in tmp whose config.toml turns off what would leave the machine (update
check, analytics, plugin sync; `test_no_traffic_leaves_loopback` checks that with strace), and a timeout,
because Codex waits forever on a dead server unless told otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from localcodex.adapters import codex_cli, toml_edit

CODEX = shutil.which("codex")
pytestmark = [pytest.mark.codex, pytest.mark.skipif(CODEX is None, reason="the Codex CLI is not installed")]
PROMPT = "Reply with exactly: hello from the emulator"
MODEL = "qwen3-coder:30b-32k"


@pytest.fixture
def home() -> Path:
    """CODEX_HOME (in tmp, from the autouse fixture) with the no-network settings, as a user could set them."""
    path = Path(os.environ["CODEX_HOME"])
    (path / "config.toml").write_text(codex_cli.QUIET_CONFIG)
    return path


@pytest.fixture
def emu(emulator_factory):
    from emulator import FakeModel

    return emulator_factory(installed=[FakeModel(name=MODEL, parameters={"num_ctx": 32768})])


def exec_codex(home: Path, cwd: Path, profile: str | None = "local_ollama", *args: str, timeout: float = 90,
               env: dict[str, str] | None = None) -> codex_cli.ExecResult:
    return codex_cli.run_exec(PROMPT, profile=profile, codex_home=home, timeout=timeout, extra_args=args,
                              cwd=cwd, env={**os.environ, **(env or {})})


def responses(emu) -> list:
    return [r for r in emu.requests if r.method == "POST" and r.path.startswith("/v1/responses")]


def test_codex_exec_answers_through_the_profile(cli, home: Path, emu, tmp_path: Path) -> None:
    assert cli("configure", "--host", emu.url, "--model", MODEL).code == 0
    run = exec_codex(home, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "hello from the emulator" in run.stdout
    sent = responses(emu)
    assert [r.path for r in sent] == ["/v1/responses"] and sent[0].json["model"] == MODEL
    # web_search = "disabled" and [agents] enabled = false: only function tools reach the local server
    kinds = {tool["type"] for tool in sent[0].json["tools"]}
    assert kinds == {"function"}, kinds
    assert "Reconnecting" not in run.stderr


def test_every_emitted_key_loads_under_strict_config(cli, home: Path, emu, tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.md"
    prompt.write_text("You are a coding agent working through a local model.\n")
    result = cli("configure", "--host", emu.url, "--model", MODEL, "--default", "--model-catalog",
                 "--instructions", prompt, "--env-key", "LC_TEST_KEY", "--header", "X-Team=platform",
                 "--env-header", "X-User-Token=LC_TEST_USER", "--idle-timeout", "900")
    assert result.code == 0, result.output
    run = exec_codex(home, tmp_path, "local_ollama", "--strict-config",
                     env={"LC_TEST_KEY": "k-123", "LC_TEST_USER": "u-456"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "unknown configuration field" not in run.stderr and "hello from the emulator" in run.stdout
    assert "Model metadata" not in run.stderr  # the catalog is in use
    headers = responses(emu)[0].headers
    assert headers["authorization"] == "Bearer k-123"
    assert headers["x-team"] == "platform" and headers["x-user-token"] == "u-456"
    assert responses(emu)[0].json["input"][0]["content"][0]["text"] == prompt.read_text()
    # --default made the same settings Codex's default: plain `codex exec` (no -p) goes to the emulator too
    plain = exec_codex(home, tmp_path, None, "--strict-config", env={"LC_TEST_KEY": "k", "LC_TEST_USER": "u"})
    assert plain.returncode == 0 and "hello from the emulator" in plain.stdout, plain.stderr[-2000:]


def test_strict_config_rejects_what_it_should(home: Path, emu, tmp_path: Path) -> None:
    """The check above can fail: a key Codex does not know makes --strict-config exit non-zero."""
    (home / "bad.config.toml").write_text(
        f'model = "{MODEL}"\nmodel_provider = "x"\n[model_providers.x]\nname = "x"\n'
        f'base_url = "{emu.url}/v1"\nmodel_context_window = 8192\n')
    run = exec_codex(home, tmp_path, "bad", "--strict-config", timeout=30)
    assert run.returncode != 0 and "unknown configuration field" in run.stderr
    assert responses(emu) == []


def test_profiles_table_form_for_old_codex_loads_under_strict_config(cli, home: Path, emu, tmp_path: Path,
                                                                     monkeypatch) -> None:
    fake = tmp_path / "old-codex"
    fake.mkdir()
    (fake / "codex").write_text("#!/bin/sh\necho 'codex-cli 0.120.0'\n")
    (fake / "codex").chmod(0o755)
    with monkeypatch.context() as patch:
        patch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
        result = cli("configure", "--host", emu.url, "--model", MODEL, "--default", "--json")
    assert result.code == 0 and result.json()["data"]["form"] == "profiles_table"
    data = toml_edit.plain(toml_edit.parse((home / "config.toml").read_text(), "config.toml"))
    assert data["profiles"]["local_ollama"]["model"] == MODEL
    # Codex 0.169 still parses [profiles.*] tables (strictly), though only old Codex applies them with -p
    run = exec_codex(home, tmp_path, None, "--strict-config")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "hello from the emulator" in run.stdout


def test_server_down_fails_fast_instead_of_retrying_forever(cli, home: Path, dead_url: str, tmp_path: Path) -> None:
    assert cli("configure", "--host", dead_url, "--model", MODEL, "--context", "32768").code == 0
    run = exec_codex(home, tmp_path, timeout=60)
    assert not run.timed_out, "Codex kept retrying a dead server"
    assert run.returncode != 0 and run.seconds < 45  # retrying for minutes is what this rules out
    assert "Connection failed" in run.stderr
    assert "waiting for network" not in run.stderr


def test_server_errors_are_retried_a_little_not_thirty_times(cli, home: Path, emu, tmp_path: Path) -> None:
    from emulator import Fault

    assert cli("configure", "--host", emu.url, "--model", MODEL).code == 0
    emu.inject(Fault("http_500", path="/v1/responses", times=None, message="model failed to load"))
    run = exec_codex(home, tmp_path, timeout=60)
    assert run.returncode != 0 and not run.timed_out
    # request_max_retries = 1, stream_max_retries = 2: at most (1 + 1) × (1 + 2) requests (Codex's defaults: 30)
    assert 1 < len(responses(emu)) <= 6
    assert run.seconds < 45


def test_model_catalog_keeps_codex_own_prompt(cli, home: Path, emu, tmp_path: Path) -> None:
    assert cli("configure", "--host", emu.url, "--model", MODEL, "--profile", "plain").code == 0
    result = cli("configure", "--host", emu.url, "--model", MODEL, "--model-catalog", "--json")
    assert result.code == 0, result.output
    assert any("Codex 0." in w and "default prompt" in w for w in result.json()["warnings"])
    without = exec_codex(home, tmp_path, "plain")
    with_catalog = exec_codex(home, tmp_path, "local_ollama")
    assert without.returncode == 0 and with_catalog.returncode == 0, with_catalog.stderr[-2000:]
    assert "Model metadata" in without.stderr and "Model metadata" not in with_catalog.stderr
    first, second = responses(emu)
    assert first.json["input"][0]["content"] == second.json["input"][0]["content"]  # the same system prompt
    assert len(first.json["input"][0]["content"][0]["text"]) > 1000


@pytest.mark.parametrize("template", ["local-ollama", "ollama-remote", "llama-cpp", "lm-studio", "glm", "mistral",
                                      "openrouter", "company-gateway"])
def test_every_template_works_with_codex(cli, home: Path, emu, tmp_path: Path, template: str) -> None:
    args = ["--model", MODEL, "--context", "32768"]
    if template in ("local-ollama", "ollama-remote"):
        args += ["--host", emu.url]
    else:
        args += ["--base-url", f"{emu.url}/v1"]
    if template == "company-gateway":
        args += ["--set", "team=platform"]
    result = cli("provider", "add", template, *args, "--json")
    assert result.code == 0, result.output
    profile = result.json()["data"]["result"]["profile"]
    keys = {"ZAI_API_KEY": "z", "MISTRAL_API_KEY": "m", "OPENROUTER_API_KEY": "o", "GATEWAY_API_KEY": "g",
            "GATEWAY_USER_TOKEN": "t"}
    run = exec_codex(home, tmp_path, profile, "--strict-config", env=keys)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "hello from the emulator" in run.stdout
    assert responses(emu)[0].json["model"] == MODEL


def test_no_traffic_leaves_loopback(cli, home: Path, dead_url: str, tmp_path: Path) -> None:
    """With the settings these tests use, Codex connects to nothing but loopback. Run in a network namespace
    of its own (nothing could leave anyway) under strace, so a regression shows up as a failed test."""
    strace, unshare = shutil.which("strace"), shutil.which("unshare")
    if not strace or not unshare or subprocess.run([unshare, "-r", "-n", "true"], capture_output=True).returncode:
        pytest.skip("needs strace and unprivileged `unshare -r -n`")
    assert cli("configure", "--host", dead_url, "--model", MODEL, "--context", "32768").code == 0
    log = tmp_path / "strace.txt"
    env = {**os.environ, "CODEX_HOME": str(home)}
    proc = subprocess.run(
        [unshare, "-r", "-n", strace, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(log),
         CODEX, "exec", "-p", "local_ollama", "--skip-git-repo-check", PROMPT],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90,
    )
    assert "Connection failed" in proc.stderr, proc.stderr[-2000:]
    text = log.read_text()
    addresses = re.findall(r'sin_addr=inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', text)
    assert addresses, "strace saw no connection at all: the check would prove nothing"
    outside = {a or b for a, b in addresses} - {"127.0.0.1", "::1"}
    assert outside == set(), f"Codex tried to reach {outside}"

"""`localcodex doctor`: one test per finding, each from a real-looking config and environment, asserting the
finding, where it is (file, key, line) and its fix; a clean setup gives no findings; a malformed file gives its
line and column; nothing on disk changes; no Ollama and no Codex still give a report."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import shlex
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from emulator import Emulator, FakeModel, preset_models

from localcodex.adapters.hostenv import HostEnv
from localcodex.core.detect import compute_budget
from localcodex.core.doctor.run import DoctorReport, DoctorRequest, Finding, doctor
from localcodex.domain.machine import GPU, Machine
from localcodex.domain.units import GiB
from localcodex.errors import ExitCode
from localcodex.invocation import Invocation
from localcodex.wiring import Live

PRESETS = {m.name: m for m in preset_models()}


def with_ctx(name: str, num_ctx: int) -> FakeModel:
    model = PRESETS[name]
    return dataclasses.replace(model, parameters={**model.parameters, "num_ctx": num_ctx})


def machine(vram_gib: int = 0, ram_gib: int = 64) -> Machine:
    """A Linux box with one NVIDIA GPU of `vram_gib` (none for 0) and `ram_gib` of RAM, all free."""
    gpus = (GPU(0, "nvidia", "RTX test", vram_gib * GiB, vram_gib * GiB, "cuda"),) if vram_gib else ()
    m = Machine(os="linux", arch="x86_64", cpu_model="test", cores_physical=8, cores_logical=16, simd=("avx2",),
                ram_total=ram_gib * GiB, ram_available=ram_gib * GiB, gpus=gpus)
    return dataclasses.replace(m, budget=compute_budget(m))


class FakeHost(HostEnv):
    """The real readers (shell files, systemd units under a fake root, modes); the socket table is given."""

    def __init__(self, root: Path, home: Path, listening: tuple[str, ...] = ()) -> None:
        super().__init__(root, home)
        self.listening = listening

    def listening_addresses(self, port: int) -> tuple[str, ...] | None:
        return self.listening


class Setup:
    """One user's machine in tmp_path: ~/.codex, a project folder, a fake / for system files, a fake `codex`."""

    def __init__(self, tmp_path: Path, home: Path) -> None:
        self.home = home
        self.codex_home = home / ".codex"
        self.project = tmp_path / "work" / "app"
        self.project.mkdir(parents=True)
        self.root = tmp_path / "root"
        self.root.mkdir()
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.fake_codex("0.169.0")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "CODEX_OSS"))}
        self.env.update(PATH=str(self.bin), CODEX_HOME=str(self.codex_home), HOME=str(home))
        self.listening: tuple[str, ...] = ()

    def fake_codex(self, version: str | None) -> None:
        """`codex --version` prints this version (None: no codex on PATH at all)."""
        exe = self.bin / "codex"
        if version is None:
            exe.unlink(missing_ok=True)
            return
        exe.write_text(f"#!/bin/sh\necho 'codex-cli {version}'\n")
        exe.chmod(0o755)

    def write(self, path: Path | str, text: str, mode: int = 0o600) -> Path:
        path = self.codex_home / path if isinstance(path, str) else path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    def run(self, **kw) -> DoctorReport:
        kw.setdefault("run_probes", False)
        kw.setdefault("machine", machine())
        request = DoctorRequest(env=self.env, cwd=self.project, root=self.root,
                                hostenv=FakeHost(self.root, self.home, self.listening), **kw)
        return doctor(request, Live(Invocation.build(request.host, env=self.env)))


@pytest.fixture
def setup(tmp_path: Path, hermetic_env: Path) -> Setup:
    return Setup(tmp_path, hermetic_env)


def only(report: DoctorReport, id: str) -> Finding:
    found = [f for f in report.findings if f.id == id]
    assert len(found) == 1, f"expected one {id}, got {[(f.id, f.message) for f in report.findings]}"
    return found[0]


def ids(report: DoctorReport) -> list[str]:
    return [f.id for f in report.findings]


def apply_fix(cli, finding: Finding) -> None:
    """Run the finding's fix command the way a user would paste it."""
    assert finding.fix_command, finding
    args = shlex.split(finding.fix_command)
    assert args[0] == "localcodex", finding.fix_command
    result = cli(*args[1:])
    assert result.code == 0, result.output


# What `localcodex configure --profile local_ollama` writes (shared/reference/codex-config.md, recommended output).
def profile_text(base_url: str, model: str = "qwen3.5:27b", window: int = 65536) -> str:
    return f"""\
model = "{model}"
model_provider = "local_ollama"
model_context_window = {window}
web_search = "disabled"

[agents]
enabled = false

[model_providers.local_ollama]
name = "Ollama (local)"
base_url = "{base_url}"
wire_api = "responses"
stream_idle_timeout_ms = 600000
"""


# -- 1. model_provider names no table ---------------------------------------------------------------------------


def test_provider_typo_suggests_the_closest_id(setup):
    config = setup.write("config.toml", 'model = "qwen3.5:27b"\nmodel_provider = "local_olama"\n\n'
                         '[model_providers.local_ollama]\nname = "Ollama"\nbase_url = "http://localhost:11434/v1"\n')
    f = only(setup.run(), "provider-missing")
    assert f.severity == "error"
    assert "Model provider `local_olama` not found" in f.message and "did you mean `local_ollama`?" in f.message
    assert (f.file, f.key, f.line) == (str(config), "model_provider", 2)
    assert f.fix == 'set model_provider = "local_ollama"'


def test_provider_table_in_a_file_the_profile_does_not_load(setup):
    setup.write("config.toml", 'model = "gpt-5"\n')
    work = setup.write("work.config.toml", 'model = "qwen3.5:27b"\nmodel_provider = "gateway"\n')
    other = setup.write("home.config.toml", '[model_providers.gateway]\nname = "GW"\nbase_url = "https://gw.example/v1"\n')
    f = only(setup.run(), "provider-missing")
    assert f"is in {other}, which codex -p work does not load" in f.message
    assert (f.file, f.key, f.line) == (str(work), "model_provider", 2)
    assert "move [model_providers.gateway] into work.config.toml or config.toml" in f.fix


# -- 2. reserved provider ids -----------------------------------------------------------------------------------


def test_reserved_ollama_id_is_a_hard_error_with_codex_text(setup):
    profile = setup.write("local.config.toml", 'model = "qwen3.5:27b"\nmodel_provider = "ollama"\n\n'
                          '[model_providers.ollama]\nname = "Ollama"\nbase_url = "http://localhost:11434/v1"\n')
    f = only(setup.run(), "provider-reserved-id")
    assert f.severity == "error"
    assert ("model_providers contains reserved built-in provider IDs: `ollama`. Built-in providers cannot be "
            "overridden. Rename your custom provider (for example, `openai-custom`).") in f.message
    assert (f.file, f.key, f.line) == (str(profile), "model_providers.ollama", 4)
    assert 'rename [model_providers.ollama] to [model_providers.local_ollama]' in f.fix
    assert 'set model_provider = "local_ollama"' in f.fix
    assert f.fix_command is None  # configure writes its own table but cannot rename the user's


def test_bedrock_accepts_only_some_fields(setup):
    config = setup.write("config.toml", '[model_providers.amazon-bedrock]\nbase_url = "https://bedrock.example"\n'
                         'name = "Mine"\n\n[model_providers.gcp]\nbase_url = "https://gcp.example/v1"\n'
                         'project_id = "p"\nwire_api = "responses"\n')
    f = only(setup.run(), "provider-reserved-id")  # gcp only changes allowed fields: no finding
    assert "model_providers.amazon-bedrock only supports changing `base_url`, `auth`, `http_headers`" in f.message
    assert "(name cannot)" in f.message
    assert (f.file, f.key, f.line) == (str(config), "model_providers.amazon-bedrock.name", 3)


# -- 3. wire_api and legacy profiles ----------------------------------------------------------------------------


def test_wire_api_chat_was_removed_and_configure_fixes_it(setup, emu, cli):
    config = setup.write("config.toml", 'model = "qwen3.5:27b"\nmodel_provider = "local_ollama"\n\n'
                         f'[model_providers.local_ollama]\nname = "Ollama"\nbase_url = "{emu.url}/v1"\n'
                         'wire_api = "chat"\n')
    f = only(setup.run(), "wire-api")
    assert '`wire_api = "chat"` is no longer supported.' in f.message
    assert "in `model_providers.local_ollama.wire_api`" in f.message
    assert (f.file, f.key, f.line) == (str(config), "model_providers.local_ollama.wire_api", 7)
    assert 'set wire_api = "responses"' in f.fix
    assert f.fix_command == f"localcodex configure --default --model qwen3.5:27b --host {emu.url}"
    apply_fix(cli, f)
    assert "wire-api" not in ids(setup.run())


def test_wire_api_other_value_is_an_unknown_variant(setup):
    setup.write("gw.config.toml", '[model_providers.gw]\nname = "GW"\nbase_url = "https://gw.example/v1"\n'
                'wire_api = "chat_completions"\n')
    f = only(setup.run(), "wire-api")
    assert "unknown variant `chat_completions`, expected `responses`" in f.message
    assert f.line == 4 and f.fix_command is None  # not a local Ollama: no localcodex command rewrites it


def test_legacy_profile_selector(setup):
    config = setup.write("config.toml",
                         'model = "gpt-5"\nprofile = "local"\n\n[profiles.local]\nmodel = "qwen3.5:27b"\n')
    found = [f for f in setup.run().findings if f.id == "legacy-profile"]
    selector = next(f for f in found if f.key == "profile")
    assert selector.severity == "error"
    assert ('legacy `profile = "local"` config is no longer supported; use `--profile local` with '
            '`local.config.toml` instead') in selector.message
    assert (selector.file, selector.line) == (str(config), 2)
    assert selector.fix_command == "localcodex configure --profile local --model qwen3.5:27b"
    table = next(f for f in found if f.key == "profiles.local")
    assert table.severity == "warning" and "silently runs without it" in table.message and table.line == 4
    assert table.fix_command == selector.fix_command and "delete the [profiles.local]" in table.fix


def test_legacy_profile_table_beside_a_profile_file_refuses_to_start(setup):
    config = setup.write("config.toml", '[profiles.local]\nmodel = "qwen3.5:27b"\n')
    setup.write("local.config.toml", 'model = "qwen3.5:27b"\n')
    f = only(setup.run(), "legacy-profile")
    assert f.severity == "error"
    assert (f"--profile `local` cannot be used while {config} contains legacy `profile = \"local\"` or "
            "`[profiles.local]` config") in f.message
    assert f.line == 1 and "delete the [profiles.local] table" in f.fix


def test_legacy_profile_with_an_old_codex_is_only_a_note(setup):
    setup.fake_codex("0.120.0")
    setup.write("config.toml", 'profile = "local"\n\n[profiles.local]\nmodel = "qwen3.5:27b"\n')
    report = setup.run()
    assert {f.severity for f in report.findings if f.id == "legacy-profile"} == {"info"}
    assert report.codex_version == "0.120.0"


# -- 4. env_key and env_http_headers ----------------------------------------------------------------------------


GATEWAY = """\
model = "glm-5.2"
model_provider = "gateway"

[model_providers.gateway]
name = "Company gateway"
base_url = "https://llm.example.com/v1"
env_key = "GATEWAY_API_KEY"
env_http_headers = { "X-Team" = "GATEWAY_TEAM" }
"""


def test_env_key_assigned_without_export_in_bashrc(setup):
    profile = setup.write("gw.config.toml", GATEWAY)
    (setup.home / ".bashrc").write_text("# aliases\nalias ll='ls -l'\nGATEWAY_API_KEY=abc123\n")
    setup.env.pop("GATEWAY_API_KEY", None)
    f = only(setup.run(), "env-key-unset")
    assert f.severity == "error"
    assert "names $GATEWAY_API_KEY, which is unset or not exported" in f.message
    assert "Missing environment variable: `GATEWAY_API_KEY`." in f.message
    assert "assigned without `export` at ~/.bashrc:3" in f.message
    assert (f.file, f.key, f.line) == (str(profile), "model_providers.gateway.env_key", 7)
    assert f.fix == "change ~/.bashrc:3 to `export GATEWAY_API_KEY=…`, then open a new terminal"


def test_env_key_fish_set_without_x_and_exported_elsewhere(setup):
    setup.write("gw.config.toml", GATEWAY)
    fish = setup.home / ".config/fish/config.fish"
    fish.parent.mkdir(parents=True)
    fish.write_text("set -g GATEWAY_API_KEY abc\n")
    assert "assigned without `export` at ~/.config/fish/config.fish:1" in only(setup.run(), "env-key-unset").message
    fish.write_text("set -gx GATEWAY_API_KEY abc\n")
    f = only(setup.run(), "env-key-unset")
    assert "exported at ~/.config/fish/config.fish:1, but not in the shell doctor ran from" in f.message
    assert "open a new terminal" in f.fix


def test_env_key_set_and_exported_is_fine_but_header_variable_unset(setup):
    profile = setup.write("gw.config.toml", GATEWAY)
    setup.env["GATEWAY_API_KEY"] = "k-123"
    report = setup.run()
    assert "env-key-unset" not in ids(report)
    f = only(report, "env-header-unset")
    assert f.severity == "warning" and "sends no X-Team header" in f.message
    assert (f.file, f.key, f.line) == (str(profile), 'model_providers.gateway.env_http_headers.X-Team', 8)
    assert "export GATEWAY_TEAM=" in f.fix


def test_env_key_holding_the_key_itself(setup):
    secret = "sk-proj-9fA3kLm2Qx7vT1bZr8Yw"
    setup.write("gw.config.toml", GATEWAY.replace('"GATEWAY_API_KEY"', f'"{secret}"'))
    report = setup.run()
    f = only(report, "env-key-is-secret")
    assert f.severity == "error" and f.line == 7
    assert secret not in json.dumps([dataclasses.asdict(x) for x in report.findings])


# -- 5. base_url ------------------------------------------------------------------------------------------------


def test_doubled_v1_offline(setup, emu, cli):
    profile = setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1/v1"))
    f = only(setup.run(), "base-url-wrong")
    assert "has /v1 twice" in f.message and f"POST {emu.url}/v1/v1/responses" in f.message
    assert (f.file, f.key, f.line) == (str(profile), "model_providers.local_ollama.base_url", 11)
    assert f.fix == f'set base_url = "{emu.url}/v1"'
    assert f.fix_command == f"localcodex configure --profile local_ollama --model qwen3.5:27b --host {emu.url}"
    apply_fix(cli, f)
    assert "base-url-wrong" not in ids(setup.run())


def test_custom_provider_without_base_url_goes_to_openai(setup):
    profile = setup.write("gw.config.toml", 'model = "m"\nmodel_provider = "gw"\n\n[model_providers.gw]\nname = "GW"\n')
    f = only(setup.run(), "base-url-missing")
    assert (f.file, f.key, f.line) == (str(profile), "model_providers.gw", 4)
    assert "api.openai.com" in f.message and "base_url =" in f.fix


@pytest.fixture
def emu(emulator_factory) -> Emulator:
    return emulator_factory(installed=[with_ctx("qwen3.5:27b", 65536), PRESETS["gemma3:4b"], PRESETS["llama3.2:3b"]])


def test_missing_v1_says_what_answered(setup, emu, cli):
    profile = setup.write("local_ollama.config.toml", profile_text(emu.url))
    f = only(setup.run(run_probes=True, host=emu.url), "base-url-wrong")
    assert f.severity == "error" and f.file == str(profile) and f.line == 11
    assert f"Codex would POST {emu.url}/responses" in f.message and "404" in f.message
    assert f'use base_url = "{emu.url}/v1"' in f.fix
    assert f.fix_command == f"localcodex configure --profile local_ollama --model qwen3.5:27b --host {emu.url}"
    apply_fix(cli, f)
    assert setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=48)).findings == ()


def test_after_a_wrong_base_url_the_model_is_still_checked_at_the_right_one(setup, emu):
    setup.write("local_ollama.config.toml", profile_text(emu.url, model="llama3.2:3b", window=4096))
    report = setup.run(run_probes=True, host=emu.url)
    assert {"base-url-wrong", "model-context-small"} <= set(ids(report))


def test_quick_probes_generate_nothing_and_deep_does(setup, emulator_factory):
    emu = emulator_factory(installed=[with_ctx("qwen3.5:27b", 65536)], vram_bytes=48 * GiB)
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1"))
    assert setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=48)).findings == ()
    generating = [r for r in emu.requests if r.method == "POST" and r.path.startswith(("/v1/", "/api/generate"))]
    assert generating == []
    assert setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=48), deep=True).findings == ()
    assert any(r.method == "POST" and r.path == "/v1/responses" for r in emu.requests)


def test_wrong_port_finds_ollama_on_the_right_one(setup, emu, dead_url):
    profile = setup.write("local_ollama.config.toml", profile_text(f"{dead_url}/v1"))
    report = setup.run(run_probes=True, host=emu.url)
    f = only(report, "base-url-unreachable")
    assert f"{emu.url}/v1 answers instead" in f.message and "Reconnecting" in f.message
    assert (f.file, f.key, f.line) == (str(profile), "model_providers.local_ollama.base_url", 11)
    assert f'base_url = "{emu.url}/v1"' in f.fix


def test_unreachable_host(setup, dead_url):
    setup.write("local_ollama.config.toml", profile_text(f"{dead_url}/v1"))
    f = only(setup.run(run_probes=True, host=dead_url), "base-url-unreachable")
    assert "refused" in f.message.lower() and f.severity == "error"


def test_http_404_from_a_non_ollama_path(setup, emu):
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/api/v1"))
    f = only(setup.run(run_probes=True, host=emu.url), "base-url-wrong")
    assert "404" in f.message and f"{emu.url}/v1" in f.fix


# -- 6. project-local settings ----------------------------------------------------------------------------------


def test_project_local_provider_settings_are_ignored(setup):
    repo = setup.project.parent
    (repo / ".git").mkdir()
    local = setup.write(repo / ".codex" / "config.toml",
                        'model = "qwen3.5:27b"\nmodel_provider = "local_ollama"\nopenai_base_url = "http://x/v1"\n\n'
                        '[model_providers.local_ollama]\nname = "O"\nbase_url = "http://localhost:11434/v1"\n')
    setup.write("config.toml", f'[projects."{repo}"]\ntrust_level = "trusted"\n')
    report = setup.run()
    found = {f.key: f for f in report.findings if f.id == "project-local-ignored"}
    assert set(found) == {"model_provider", "openai_base_url", "model_providers.local_ollama"}
    assert all(f.file == str(local) and f.severity == "warning" for f in found.values())
    assert (found["model_provider"].line, found["openai_base_url"].line) == (2, 3)
    assert found["model_providers.local_ollama"].line == 5
    assert "ignores provider, auth and header settings there by design" in found["model_provider"].message
    assert "user config" in found["model_provider"].fix
    assert "project-untrusted" not in ids(report)


def test_untrusted_project_config_is_disabled(setup):
    local = setup.write(setup.project / ".codex" / "config.toml", 'model_reasoning_effort = "high"\n')
    f = only(setup.run(), "project-untrusted")
    assert f.severity == "info" and f.file == str(local) and "codex exec --trust" in f.fix


# -- 7. the model: pulled, tools, context, window ---------------------------------------------------------------


def test_model_not_pulled(setup, emu, cli):
    profile = setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1", model="qwen3-coder:30b"))
    f = only(setup.run(run_probes=True, host=emu.url), "model-not-pulled")
    assert (f.file, f.key, f.line) == (str(profile), "model", 1)
    assert f.fix_command == f"localcodex pull qwen3-coder:30b --host {emu.url}"
    apply_fix(cli, f)
    assert "model-not-pulled" not in ids(setup.run(run_probes=True, host=emu.url))


def test_model_without_tools(setup, emu):
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1", model="gemma3:4b"))
    f = only(setup.run(run_probes=True, host=emu.url), "model-no-tools")
    assert "cannot call tools" in f.message and f.key == "model" and f.fix_command == "localcodex recommend"


def test_model_context_too_small(setup, emu, cli):
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1", model="llama3.2:3b", window=4096))
    report = setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=0, ram_gib=32))
    f = only(report, "model-context-small")
    assert "has no num_ctx of its own" in f.message and "4,096 tokens" in f.message and "16,384" in f.message
    assert f.key == "model" and f.line == 1
    command = f"localcodex models context llama3.2:3b --ctx 65536 --host {emu.url}"
    assert f.fix_command == command  # 64k fits a 32 GiB machine (fit.choose_context)
    point = f"localcodex configure --profile local_ollama --model llama3.2:3b-ctx64k --host {emu.url}"
    assert "creates llama3.2:3b-ctx64k" in f.fix and point in f.fix
    apply_fix(cli, f)
    apply_fix(cli, dataclasses.replace(f, fix_command=point))
    after = setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=0, ram_gib=32))
    assert after.findings == (), [(x.id, x.message) for x in after.findings]


def test_model_context_window_larger_than_num_ctx(setup, emu, cli):
    profile = setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1", window=131072))
    f = only(setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=48)), "context-window-mismatch")
    assert f.severity == "error"
    assert "model_context_window = 131,072 but qwen3.5:27b holds only 65,536 tokens" in f.message
    assert (f.file, f.key, f.line) == (str(profile), "model_context_window", 3)
    assert f.fix == "set model_context_window = 65536"
    assert f.fix_command == f"localcodex configure --profile local_ollama --model qwen3.5:27b --host {emu.url}"
    apply_fix(cli, f)
    assert "context-window-mismatch" not in ids(setup.run(run_probes=True, host=emu.url, machine=machine(48)))


def test_profiles_sharing_a_model_are_probed_once_and_each_window_is_judged(setup, emu):
    setup.write("a.config.toml", profile_text(f"{emu.url}/v1", window=65536))
    late = setup.write("b.config.toml", profile_text(f"{emu.url}/v1", window=131072))
    setup.write("c.config.toml", profile_text(f"{emu.url}/v1", model="llama3.2:3b"))
    setup.write("d.config.toml", profile_text(f"{emu.url}/v1", model="llama3.2:3b", window=4096))
    report = setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=16))  # default context 4,096
    assert [f.file for f in report.findings if f.id == "context-window-mismatch"] == [str(late)]
    assert ids(report).count("model-context-small") == 1
    shows = [r for r in emu.requests if r.path == "/api/show"]
    assert len(emu.requests) < 40 and len(shows) <= 6, [r.path for r in emu.requests]


def test_model_context_window_unset(setup, emu):
    text = profile_text(f"{emu.url}/v1").replace("model_context_window = 65536\n", "")
    setup.write("local_ollama.config.toml", text)
    f = only(setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=48)), "context-window-unset")
    assert "272,000" in f.message and f.fix == "set model_context_window = 65536"


# -- 8. fit and placement ---------------------------------------------------------------------------------------


def test_model_would_not_fit_this_machine(setup, emu):
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1"))
    f = only(setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=0, ram_gib=8)), "model-no-fit")
    assert f.severity == "error" and "qwen3.5:27b at 65,536 tokens needs about" in f.message
    assert f.key == "model" and f.fix_command == "localcodex recommend"


def test_model_loaded_partly_on_cpu(setup, emulator_factory):
    emu = emulator_factory(installed=[with_ctx("qwen3.5:27b", 65536)], vram_bytes=12 * GiB)
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1"))
    from localcodex.adapters.ollama import OllamaServer

    OllamaServer(emu.url).generate("qwen3.5:27b", "hi")  # load it; 12 GiB of VRAM cannot hold it all
    f = only(setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=12)), "model-on-cpu")
    assert "% of it on the CPU" in f.message and "/api/ps" in f.message and f.severity == "warning"


# -- 9. versions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "severity"), [("0.12.11", "error"), ("0.13.3", "warning")])
def test_old_ollama(setup, emulator_factory, version, severity):
    emu = emulator_factory(installed=[with_ctx("qwen3.5:27b", 65536)], version=version)
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1"))
    f = only(setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=48)), "ollama-too-old")
    assert f.severity == severity and version in f.message and "0.13." in f.message


def test_codex_not_installed(setup):
    setup.fake_codex(None)
    f = only(setup.run(), "codex-missing")
    assert f.severity == "error" and f.fix_command == "npm install -g @openai/codex"


def test_codex_too_old_for_profile_files(setup):
    setup.fake_codex("0.120.0")
    profile = setup.write("local_ollama.config.toml", profile_text("http://localhost:11434/v1"))
    f = only(setup.run(), "codex-too-old")
    assert f.severity == "error" and "local_ollama.config.toml" in f.message and f.file == str(profile)
    assert f.fix_command == "npm install -g @openai/codex@latest"


# -- 10. security -----------------------------------------------------------------------------------------------


def test_ollama_service_listening_on_all_interfaces(setup):
    dropin = setup.root / "etc/systemd/system/ollama.service.d/override.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text('[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0" "OLLAMA_ORIGINS=*"\n')
    report = setup.run()
    exposed = only(report, "ollama-exposed")
    assert "listens on 0.0.0.0:11434" in exposed.message
    assert (exposed.file, exposed.line, exposed.key) == (str(dropin), 2, "OLLAMA_HOST")
    assert "127.0.0.1" in exposed.fix
    origins = only(report, "ollama-origins-wildcard")
    assert (origins.file, origins.line) == (str(dropin), 2) and "any website" in origins.message


def test_listening_socket_on_all_interfaces(setup):
    setup.env["OLLAMA_HOST"] = "127.0.0.1:11434"
    setup.listening = ("0.0.0.0",)
    f = only(setup.run(), "ollama-exposed")
    assert "0.0.0.0:11434" in f.message and f.file is None
    setup.listening = ("::",)
    assert "[::]:11434" in only(setup.run(), "ollama-exposed").message
    setup.listening = ("127.0.0.1", "::1")
    assert "ollama-exposed" not in ids(setup.run())


def test_ollama_origins_wildcard_in_environment(setup):
    setup.env["OLLAMA_ORIGINS"] = "*"
    f = only(setup.run(), "ollama-origins-wildcard")
    assert f.key == "OLLAMA_ORIGINS" and f.severity == "warning"


def test_literal_secrets_are_reported_masked(setup, cli, quiet_host):
    token = "tok-8Qz1Lk3Vn7Xb2Mw9Rt5Yp4Hs"
    header = "sk-live-51HxQ2eZvKYlo2C0aB9c"
    config = setup.write("config.toml", 'model_provider = "gw"\nmodel = "m"\n\n[model_providers.gw]\nname = "GW"\n'
                         f'base_url = "https://gw.example/v1"\nexperimental_bearer_token = "{token}"\n'
                         f'http_headers = {{ "X-Api-Key" = "{header}", "X-Team" = "core" }}\n', mode=0o644)
    report = setup.run()
    secrets = [f for f in report.findings if f.id == "secret-in-config"]
    assert [f.key for f in secrets] == ["model_providers.gw.experimental_bearer_token",
                                        "model_providers.gw.http_headers.X-Api-Key"]
    assert [f.line for f in secrets] == [7, 8]
    assert "env_key" in secrets[0].fix and "env_http_headers" in secrets[1].fix
    perm = only(report, "config-permissions")
    assert perm.severity == "warning" and "0644" in perm.message and "holds credentials" in perm.message
    assert perm.fix_command == f"chmod 600 {config}"
    dumped = json.dumps([dataclasses.asdict(f) for f in report.findings])
    human = cli("doctor", "--no-probes")
    as_json = cli("doctor", "--no-probes", "--json")
    for text in (dumped, human.output, as_json.output):
        for secret in (token, header):
            assert secret not in text and secret[4:14] not in text


def test_config_readable_by_others_without_secrets_is_a_note(setup):
    config = setup.write("local_ollama.config.toml", profile_text("http://localhost:11434/v1"), mode=0o644)
    auth = setup.write("auth.json", '{"OPENAI_API_KEY": null}', mode=0o664)
    report = setup.run()
    found = {f.file: f for f in report.findings if f.id == "config-permissions"}
    assert found[str(config)].severity == "info" and found[str(config)].fix_command == f"chmod 600 {config}"
    assert found[str(auth)].severity == "warning" and "other users can change it" in found[str(auth)].message


# -- malformed TOML, CODEX_HOME -------------------------------------------------------------------------------


def test_malformed_toml_reports_line_and_column_and_other_files_are_examined(setup):
    config = setup.write("config.toml", 'model = "qwen3.5:27b"\nmodel_provider = \n')
    setup.write("local.config.toml", '[model_providers.ollama]\nname = "O"\n')
    report = setup.run()
    f = only(report, "config-invalid")
    assert (f.file, f.line, f.column) == (str(config), 2, 18)
    assert "line 2, column 18" in f.message and f.where == f"{config}:2:18"
    assert "provider-reserved-id" in ids(report)  # the profile file was still read


def test_codex_home_missing(setup, tmp_path):
    setup.env["CODEX_HOME"] = str(tmp_path / "nope")
    f = only(setup.run(codex_home=tmp_path / "nope"), "codex-home-missing")
    assert 'CODEX_HOME points to "' in f.message and f.fix_command == f"mkdir -p {tmp_path / 'nope'}"


def test_profile_option_limits_and_reports_a_missing_profile(setup):
    setup.write("a.config.toml", '[model_providers.ollama]\nname = "O"\n')
    setup.write("b.config.toml", 'model = "m"\n')
    assert "provider-reserved-id" not in ids(setup.run(profile="b"))
    f = only(setup.run(profile="nosuch"), "profile-missing")
    assert "silently runs with no profile" in f.message
    assert f.fix_command == "localcodex configure --profile nosuch"


# -- behaviour: clean, read-only, nothing running -------------------------------------------------------------


def test_profile_written_by_configure_is_clean(setup, emu, cli):
    result = cli("configure", "--host", emu.url, "--model", "qwen3.5:27b")
    assert result.code == 0, result.output
    assert (setup.codex_home / "local_ollama.config.toml").exists()
    report = setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=48))
    assert report.findings == (), [(f.id, f.message) for f in report.findings]


def test_clean_setup_has_no_findings(setup, emu):
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1"))
    report = setup.run(run_probes=True, host=emu.url, machine=machine(vram_gib=48))
    assert report.findings == (), [(f.id, f.message) for f in report.findings]
    assert report.profiles == ("", "local_ollama") and report.ollama_version == "0.32.15"
    assert report.ok and report.codex_version == "0.169.0"


@pytest.fixture
def quiet_host(monkeypatch, setup):
    """CLI tests run the real HostEnv: keep this machine's systemd units and sockets out of them."""
    monkeypatch.setattr(HostEnv, "service_environment", lambda self: {})
    monkeypatch.setattr(HostEnv, "listening_addresses", lambda self, port: ())
    monkeypatch.setenv("PATH", setup.env["PATH"])
    monkeypatch.chdir(setup.project)


def test_clean_setup_through_the_cli_prints_no_problems(setup, emu, cli, quiet_host):
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1"))
    result = cli("doctor", "--no-probes")
    assert result.code == 0, result.output
    assert "✓ no problems found (1 config file examined; servers not probed (--no-probes))" in result.stdout
    assert cli("doctor", "--no-probes", "--json").json()["data"]["findings"] == []


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_nothing_changes_on_disk(setup, emu):
    setup.write("config.toml", 'model_provider = "local_olama"\nprofile = "x"\n[profiles.x]\nmodel = "m"\n', 0o644)
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1/v1", window=999), 0o640)
    setup.write("broken.config.toml", "model = \n")
    setup.write(setup.project / ".codex" / "config.toml", 'model_provider = "x"\n')
    before = snapshot(setup.codex_home), snapshot(setup.project)
    setup.run(run_probes=True, host=emu.url)
    assert (snapshot(setup.codex_home), snapshot(setup.project)) == before


def test_no_ollama_and_no_codex(setup, cli, dead_url, quiet_host):
    setup.fake_codex(None)
    setup.write("local_ollama.config.toml", profile_text(f"{dead_url}/v1"))
    report = setup.run(run_probes=True, host=dead_url)
    assert {"codex-missing", "base-url-unreachable"} <= set(ids(report))
    assert not report.ok and report.codex_version is None and report.ollama_version is None
    assert "cannot reach its server" in only(report, "base-url-unreachable").message
    result = cli("doctor", "--host", dead_url, "--json")
    assert result.code == ExitCode.CHECK_FAILED
    doc = result.json()
    assert doc["status"] == "error"
    assert {"doctor.codex-missing", "doctor.base-url-unreachable"} <= {e["code"] for e in doc["errors"]}
    assert {f["id"] for f in doc["data"]["findings"]} >= {"codex-missing", "base-url-unreachable"}


def test_no_probes_sends_no_request(setup, emu, cli, quiet_host):
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}/v1"))
    result = cli("doctor", "--no-probes", "--host", emu.url, "--json")
    assert result.json()["data"]["probes_run"] is False
    assert emu.requests == []


def test_cli_profile_option(setup, cli, quiet_host):
    setup.write("a.config.toml", '[model_providers.ollama]\nname = "O"\n')
    setup.write("b.config.toml", 'model = "m"\n')
    narrowed = cli("doctor", "--no-probes", "-p", "b", "--json")
    assert narrowed.code == 0 and narrowed.json()["data"]["profiles"] == ["b"]
    assert cli("doctor", "--no-probes", "--json").code == ExitCode.CHECK_FAILED
    bad = cli("doctor", "--no-probes", "--profile", "../x")
    assert bad.code == ExitCode.USAGE and "invalid --profile value" in bad.stderr


def test_human_output_groups_by_severity(setup, cli, quiet_host):
    setup.write("config.toml", 'model_provider = "local_olama"\n\n[model_providers.local_ollama]\nname = "O"\n'
                'base_url = "http://localhost:11434/v1"\n', mode=0o644)
    setup.write(setup.project / ".codex" / "config.toml", 'model_provider = "x"\n')
    result = cli("doctor", "--no-probes")
    assert result.code == ExitCode.CHECK_FAILED
    out = result.stdout
    assert out.index("✗ 1 error") < out.index("! 1 warning") < out.index("i 2 notes")
    assert f"at: {setup.codex_home / 'config.toml'}:1 model_provider" in out
    assert 'fix: set model_provider = "local_ollama"' in out
    assert f"run: chmod 600 {setup.codex_home / 'config.toml'}" in out


# -- the real Codex agrees with doctor's texts ----------------------------------------------------------------


BROKEN = {
    "reserved": 'model = "m"\nmodel_provider = "ollama"\n[model_providers.ollama]\nname = "O"\n'
                'base_url = "http://127.0.0.1:9/v1"\n',
    "chat": 'model = "m"\nmodel_provider = "x"\n[model_providers.x]\nname = "x"\nbase_url = "http://127.0.0.1:9/v1"\n'
            'wire_api = "chat"\n',
    "variant": 'model = "m"\n[model_providers.x]\nname = "x"\nwire_api = "chat_completions"\n',
    "noname": 'model = "m"\n[model_providers.x]\nbase_url = "http://127.0.0.1:9/v1"\n',
    "bedrock": 'model = "m"\n[model_providers.amazon-bedrock]\nname = "x"\n',
    "selector": 'profile = "local"\nmodel = "m"\n',
    "typo": 'model = "m"\nmodel_provider = "local_olama"\n[model_providers.local_ollama]\nname = "x"\n'
            'base_url = "http://127.0.0.1:9/v1"\n',
    "malformed": "model = \n",
}


def codex_error(codex_home: Path, cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "CODEX_HOME": str(codex_home)}
    proc = subprocess.run(["codex", "exec", "--skip-git-repo-check", "hi"], capture_output=True, text=True,
                          env=env, cwd=cwd, stdin=subprocess.DEVNULL, timeout=60)
    return proc.returncode, proc.stderr


@pytest.mark.codex
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_real_codex_fails_with_the_text_doctor_quotes(setup, case):
    import shutil

    if shutil.which("codex") is None:
        pytest.skip("codex is not installed")
    setup.env["PATH"] = os.environ["PATH"]
    setup.write("config.toml", BROKEN[case])
    code, stderr = codex_error(setup.codex_home, setup.project)
    assert code == 1, stderr
    errors = [f for f in setup.run().findings if f.severity == "error"]
    assert errors, "doctor found nothing"
    said = next(line for line in stderr.splitlines() if line.startswith("Error"))
    prefix = "Error loading config.toml:" if said.startswith("Error loading config.toml:") else "Error:"
    said = said[len(prefix):].strip()
    if case == "malformed":  # Codex prints `file:line:col: reason` on the next line
        where = next(line for line in stderr.splitlines() if "config.toml:" in line and line.startswith("/"))
        line, column = (int(x) for x in where.split(":")[1:3])
        f = errors[0]
        assert (f.line, f.column) == (line, column)
        return
    assert any(said in f.message for f in errors), (said, [f.message for f in errors])


# -- the readers doctor relies on -----------------------------------------------------------------------------


def test_key_lines_follow_tables_dotted_keys_and_multiline_values():
    from localcodex.domain.toml_lines import key_lines

    text = '''\
# comment = 1
model = "m"   # trailing
notes = """
fake = "not a key"
"""
tools = [
  "a",   # [not.a.table]
  "b",
]
model_providers.inline.name = "I"

[model_providers."my.gw"]
name = "GW"
http_headers = { "X-Key" = "v",
  Other = "w" }

[[mcp_servers.list]]
command = "x"
'''
    lines = key_lines(text)
    assert lines[("model",)] == 2 and lines[("notes",)] == 3 and lines[("tools",)] == 6
    assert ("fake",) not in lines and ("not", "a", "table") not in lines
    assert lines[("model_providers", "inline")] == 10 and lines[("model_providers", "inline", "name")] == 10
    assert lines[("model_providers", "my.gw")] == 12 and lines[("model_providers", "my.gw", "name")] == 13
    assert lines[("model_providers", "my.gw", "http_headers")] == 14 and ("Other",) not in lines
    assert lines[("mcp_servers", "list", "command")] == 18


@pytest.mark.parametrize(("text", "exported"), [
    ("MY_KEY=abc\n", False),
    ("export MY_KEY=abc\n", True),
    ("MY_KEY=abc\nexport MY_KEY\n", True),
    ("declare -x MY_KEY=abc\n", True),
    ("  MY_KEY='a b'  # indented\n", False),
])
def test_shell_assignment_export_status(tmp_path, text, exported):
    from localcodex.adapters.hostenv import shell_assignments

    (tmp_path / ".zshrc").write_text("# zsh\n" + text)
    found = shell_assignments(tmp_path, "MY_KEY")
    assert [(a.file.name, a.line, a.exported) for a in found][:1] == [(".zshrc", 2, exported)]
    assert shell_assignments(tmp_path, "MY_KEYS") == ()


def test_service_environment_last_assignment_wins(tmp_path):
    from localcodex.adapters.hostenv import service_environment

    unit = tmp_path / "etc/systemd/system/ollama.service"
    unit.parent.mkdir(parents=True)
    unit.write_text('[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434"\nExecStart=/usr/bin/ollama serve\n')
    dropin = tmp_path / "etc/systemd/system/ollama.service.d/10-local.conf"
    dropin.parent.mkdir()
    dropin.write_text("[Service]\nEnvironment=OLLAMA_HOST=127.0.0.1:11434 OLLAMA_KEEP_ALIVE=1h\n")
    env = service_environment(tmp_path)
    host = env["OLLAMA_HOST"]
    assert (host.value, host.file, host.line) == ("127.0.0.1:11434", dropin, 2)
    assert env["OLLAMA_KEEP_ALIVE"].value == "1h"


def test_no_codex_configuration_yet_points_to_setup(cli):
    doc = cli("doctor", "--no-probes", "--json").json()
    found = [f for f in doc["data"]["findings"] if f["id"] == "no-local-provider"]
    assert found and found[0]["severity"] == "info" and found[0]["fix_command"] == "localcodex setup"
    assert doc["status"] == "ok"  # a note, not an error


# -- real Ollama behaviour (shared/reference/ollama-corrections.md 4 and 7) -----------------------------------


def test_double_slash_base_url_offline(setup, emu):
    setup.write("local_ollama.config.toml", profile_text(f"{emu.url}//v1"))
    f = only(setup.run(), "base-url-wrong")
    assert "has // in its path" in f.message and f.fix == f'set base_url = "{emu.url}/v1"'


class _HostCheck(http.server.BaseHTTPRequestHandler):
    """Ollama on loopback answering a non-local Host header: 403, empty body (server/routes.go ~1776-1839)."""

    protocol_version = "HTTP/1.1"

    def _refuse(self) -> None:
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _refuse

    def log_message(self, *args) -> None:
        pass


def test_empty_403_is_the_host_check_not_a_key(setup):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostCheck)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        setup.write("local_ollama.config.toml", profile_text(f"{url}/v1"))
        report = setup.run(run_probes=True, host=url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    found = [f for f in report.findings if "allowed-host" in f.message]
    assert found, [(f.id, f.message) for f in report.findings]
    assert "auth-rejected" not in ids(report)
    assert all("--env-key" not in (f.fix or "") for f in found) and "Host" in found[0].fix

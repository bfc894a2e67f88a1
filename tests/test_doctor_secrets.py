"""doctor and credentials (issue 19): a user name and password or a key in a provider's base_url, a key in its
query_params, found and reported masked with the fix; no URL doctor quotes (from a file or from a probe's error)
shows one; a change two files that a killed run left half done is reported with its fix."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_doctor import FakeHost, Setup, machine, only, quiet_host  # noqa: F401  (quiet_host: a fixture)

from localcodex.core.doctor.run import DoctorReport, DoctorRequest, DoctorStep, doctor
from localcodex.invocation import Invocation
from localcodex.wiring import Live

PASSWORD = "s3cr3tPW"
KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c"
GOOGLE_KEY = "AIzaSyB0123456789abcdefGHIJ"


@pytest.fixture
def setup(tmp_path: Path, hermetic_env: Path) -> Setup:
    return Setup(tmp_path, hermetic_env)


def gateway(base_url: str, extra: str = "") -> str:
    return (f'model = "m"\nmodel_provider = "gw"\n\n[model_providers.gw]\nname = "GW"\nbase_url = "{base_url}"\n'
            f'wire_api = "responses"\n{extra}')


def everything(report: DoctorReport) -> str:
    return json.dumps([dataclasses.asdict(f) for f in report.findings])


def secret_findings(report: DoctorReport) -> dict[str, object]:
    return {f.key: f for f in report.findings if f.id == "secret-in-config"}


def test_user_name_and_password_in_base_url_is_a_masked_warning_with_the_fix(setup):
    config = setup.write("config.toml", gateway(f"http://alice:{PASSWORD}@10.0.0.5:8080/v1"))
    report = setup.run()
    f = secret_findings(report)["model_providers.gw.base_url"]
    assert f.severity == "warning" and f.file == str(config) and f.line == 6
    assert "user name or password" in f.message and "http://10.0.0.5:8080/v1" in f.message
    assert 'base_url = "http://10.0.0.5:8080/v1"' in f.fix and "env_http_headers" in f.fix
    assert PASSWORD not in everything(report) and "alice" not in everything(report)


def test_key_in_base_url_query_and_in_query_params_are_warnings(setup):
    setup.write("gw.config.toml", gateway(f"https://gw.example/v1?api-version=2024-10-21&api_key={KEY}",
                                          f'query_params = {{ key = "{GOOGLE_KEY}", team = "core" }}\n'))
    report = setup.run()
    found = secret_findings(report)
    url, param = found["model_providers.gw.base_url"], found["model_providers.gw.query_params.key"]
    assert "query parameter 'api_key'" in url.message and "?api-version=2024-10-21&api_key=…" in url.message
    assert 'base_url = "https://gw.example/v1?api-version=2024-10-21"' in url.fix and "env_key" in url.fix
    assert param.line == 8 and "AIz…" in param.message and "env_key" in param.fix and "chmod 600" in param.fix
    assert "model_providers.gw.query_params.team" not in found
    text = everything(report)
    assert KEY not in text and GOOGLE_KEY not in text and KEY[8:] not in text


def test_a_harmless_query_parameter_is_not_a_secret(setup):
    setup.write("config.toml", gateway("https://gw.example/openai/v1?api-version=2024-10-21",
                                       'query_params = { "api-version" = "2024-10-21" }\n'))
    assert secret_findings(setup.run()) == {}


def test_a_readable_config_with_a_key_only_in_its_url_is_a_permissions_warning(setup):
    config = setup.write("config.toml", gateway(f"https://gw.example/v1?key={GOOGLE_KEY}"), mode=0o644)
    perm = only(setup.run(), "config-permissions")
    assert perm.file == str(config) and perm.severity == "warning" and "holds credentials" in perm.message


def test_urls_in_probe_errors_are_shown_without_credentials(setup, dead_url):
    """The probe of a dead server quotes the URL it tried: the password and key must not ride along."""
    host_port = dead_url.split("://", 1)[1]
    setup.write("config.toml", gateway(f"http://alice:{PASSWORD}@{host_port}/v1?api_key={KEY}"))
    steps: list[DoctorStep] = []
    request = DoctorRequest(env=setup.env, cwd=setup.project, root=setup.root, run_probes=True,
                            machine=machine(), hostenv=FakeHost(setup.root, setup.home))
    report = doctor(request, Live(Invocation.build(request.host, env=setup.env)), steps.append)
    text = everything(report) + json.dumps([dataclasses.asdict(s) for s in steps])
    assert PASSWORD not in text and KEY not in text
    assert any(f.id == "base-url-unreachable" and host_port in f.message for f in report.findings), text


def test_doctor_cli_never_prints_a_credential(setup, cli, quiet_host):  # noqa: F811
    setup.write("config.toml", gateway(f"http://alice:{PASSWORD}@127.0.0.1:9/v1?api_key={KEY}",
                                       f'http_headers = {{ "X-Custom" = "Bearer {KEY}" }}\n'
                                       f'query_params = {{ token = "{KEY}" }}\n'), mode=0o644)
    for args in (["doctor"], ["doctor", "--json"], ["doctor", "--no-probes"]):
        result = cli(*args)
        assert PASSWORD not in result.output and KEY not in result.output, args
    assert "secret-in-config" in cli("doctor", "--no-probes").output


# -- a change to two files left half done ----------------------------------------------------------------------


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing in localcodex catches it."""


def _interrupted_configure(cli, monkeypatch, home: Path) -> None:
    from localcodex.adapters import codex_cli, codex_write

    monkeypatch.setattr(codex_cli, "codex_info", lambda *a, **k: codex_cli.CodexInfo(
        Path("codex"), (0, 169, 0), "codex-cli 0.169.0"))

    def crash(tmp: Path, path: Path) -> None:
        if path.name == "config.toml":
            raise _Killed

    monkeypatch.setattr(codex_write, "_before_replace", crash)
    with pytest.raises(_Killed):
        cli("configure", "--model", "qwen3-coder:30b", "--context", "32768", "--default")
    monkeypatch.setattr(codex_write, "_before_replace", lambda tmp, path: None)


def test_a_change_left_half_done_is_reported_and_its_fix_works(setup, cli, monkeypatch):
    setup.write("config.toml", 'model = "gpt-5"\n')
    _interrupted_configure(cli, monkeypatch, setup.codex_home)
    f = only(setup.run(), "journal-pending")
    assert f.severity == "warning"
    assert "`localcodex configure`" in f.message and "local_ollama.config.toml" in f.message
    assert "config.toml still has the old one" in f.message
    assert f.fix_command == "localcodex configure --restore" and "again to finish it" in f.fix
    assert cli(*f.fix_command.split()[1:]).code == 0
    assert (setup.codex_home / "config.toml").read_text() == 'model = "gpt-5"\n'
    assert not (setup.codex_home / "local_ollama.config.toml").exists()
    assert "journal-pending" not in [x.id for x in setup.run().findings]


def test_rerunning_the_interrupted_command_also_clears_it(setup, cli, monkeypatch):
    setup.write("config.toml", 'model = "gpt-5"\n')
    _interrupted_configure(cli, monkeypatch, setup.codex_home)
    assert cli("configure", "--model", "qwen3-coder:30b", "--context", "32768", "--default").code == 0
    assert "journal-pending" not in [x.id for x in setup.run().findings]


def test_a_key_written_where_a_variable_name_belongs_is_masked_not_read_as_a_name(setup):
    """env_http_headers = { "X-Api-Key" = "sk-…" }: doctor used to say "export sk-live-…=…", printing the key."""
    headers = f'env_http_headers = {{ "X-Api-Key" = "{KEY}", "X-Team" = "bad name" }}\n'
    config = setup.write("config.toml", gateway("https://gw.example/v1", headers), mode=0o644)
    report = setup.run()
    f = only(report, "env-header-is-secret")
    assert f.severity == "error" and f.key == "model_providers.gw.env_http_headers.X-Api-Key" and f.line == 8
    assert 'env_http_headers = { "X-Api-Key" = "GW_X_API_KEY" }' in f.fix
    assert only(report, "env-header-invalid").key == "model_providers.gw.env_http_headers.X-Team"
    assert "env-header-unset" not in [x.id for x in report.findings]
    assert only(report, "config-permissions").file == str(config) and "holds credentials" in \
        only(report, "config-permissions").message
    assert KEY not in everything(report) and KEY[8:] not in everything(report)

"""The CLI skeleton: entry points, the JSON envelope, exit codes, error lines, paths."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from localcodex import __version__
from localcodex.errors import ExitCode


def test_version_and_help(cli):
    result = cli("--version")
    assert result.code == 0
    assert result.stdout.strip() == f"localcodex {__version__}"
    result = cli("--help")
    assert result.code == 0
    assert "paths" in result.stdout


def test_python_dash_m_runs_as_a_process(cli_process):
    result = cli_process("--version")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == f"localcodex {__version__}"


def test_paths_follow_the_environment(cli, hermetic_env, tmp_path, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11500")
    doc = cli("paths", "--json").json()
    assert doc["localcodex"] == __version__
    assert doc["command"] == "paths" and doc["status"] == "ok" and doc["errors"] == []
    data = doc["data"]
    assert data["codex_home"] == str(hermetic_env / ".codex")
    assert data["codex_config"] == str(hermetic_env / ".codex" / "config.toml")
    assert data["data_dir"] == str(tmp_path / "localcodex-data")
    assert data["ollama_models"] == str(tmp_path / "ollama-models")
    # a listen-all address is not connectable: Codex must be given loopback
    assert data["ollama_host"] == {
        "url": "http://0.0.0.0:11500",
        "native": "http://127.0.0.1:11500",
        "openai": "http://127.0.0.1:11500/v1",
        "source": "OLLAMA_HOST",
    }


def test_host_option_wins_over_environment(cli):
    doc = cli("paths", "--json", "--host", "http://gpu-box:11434/v1/").json()
    assert doc["data"]["ollama_host"]["native"] == "http://gpu-box:11434"
    assert doc["data"]["ollama_host"]["source"] == "--host"


def test_human_paths_output_goes_to_stdout(cli):
    result = cli("paths")
    assert result.code == 0
    assert "Codex home" in result.stdout and "Ollama host" in result.stdout
    assert result.stderr == ""


def test_usage_error_exit_code_and_json_envelope(cli):
    result = cli("paths", "--bogus")
    assert result.code == ExitCode.USAGE
    assert "No such option" in result.stderr and result.stdout == ""
    result = cli("paths", "--json", "--bogus")
    assert result.code == ExitCode.USAGE
    doc = result.json()
    assert doc["status"] == "error" and doc["errors"][0]["code"] == "usage"


def test_profiles_templates_are_found():
    from localcodex.paths import profiles_dir

    assert profiles_dir().is_dir()


def test_errors_are_one_line_without_traceback(cli, monkeypatch):
    """A LocalcodexError raised in a command body becomes one error line plus its fix, and its exit code."""
    from localcodex.errors import ConfigError
    from localcodex.paths import Paths

    def broken(*a, **k) -> Paths:
        raise ConfigError("config.toml line 3, column 1: bad value", "fix the line, or run `localcodex doctor`")

    monkeypatch.setattr("localcodex.paths.resolve", broken)
    result = cli("paths")
    assert result.code == ExitCode.CONFIG
    assert result.stderr.splitlines() == [
        "error: config.toml line 3, column 1: bad value",
        "  fix: fix the line, or run `localcodex doctor`",
    ]
    assert "Traceback" not in result.output
    doc = cli("paths", "--json").json()
    assert doc["status"] == "error"
    assert doc["errors"] == [{"code": "config", "message": "config.toml line 3, column 1: bad value",
                              "hint": "fix the line, or run `localcodex doctor`"}]
    result = cli("paths", "--debug")
    assert "Traceback" in result.stderr and result.code == ExitCode.CONFIG


def test_unexpected_exception_is_an_internal_error_line(cli, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr("localcodex.paths.resolve", boom)
    result = cli("paths")
    assert result.code == ExitCode.FAILURE
    assert "internal error: RuntimeError: kaboom" in result.stderr
    assert "--debug" in result.stderr and "Traceback" not in result.stderr


def test_heavy_modules_are_not_imported_for_help():
    code = (
        "import sys; from localcodex.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('ollama', 'httpx', 'tomlkit', 'pynvml', 'psutil', 'sqlite3') if m in sys.modules]\n"
        "print(heavy, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip() == "[]"


def test_detect_and_help_do_not_import_pydantic():
    """typer would import pydantic (~60 ms) to coerce text options and flags; cli.py gives those a plain
    coercion, so `detect --json` (the most run step) and a command's `--help` start without it."""
    code = (
        "import sys; from localcodex.cli import main\n"
        "for argv in (['detect', '--json', '--vram', '8G'], ['bench', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print([m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')], file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip() == "[]"
    assert '"vram"' in proc.stdout or "given by --vram" in proc.stdout  # the option's value arrived intact


def test_typed_options_are_still_validated(cli):
    result = cli("bench", "--runs", "x")
    assert result.code == ExitCode.USAGE
    assert "--runs" in result.output


def _leaf_commands() -> list[list[str]]:
    import typer.main

    from localcodex.cli import app

    def walk(group, prefix):
        for name, command in getattr(group, "commands", {}).items():
            if getattr(command, "commands", None):
                yield from walk(command, [*prefix, name])
            else:
                yield [*prefix, name]

    return list(walk(typer.main.get_command(app), []))


def test_every_command_is_listed_and_has_json(cli):
    leaves = _leaf_commands()
    assert {"setup", "detect", "recommend", "pull", "check", "configure", "bench", "doctor", "trial", "paths"} <= {
        path[0] for path in leaves
    }
    for path in leaves:
        result = cli(*path, "--help")
        assert result.code == 0, path
        assert "--json" in result.stdout, f"`localcodex {' '.join(path)}` has no --json"


def test_ollama_server_unreachable_is_one_clear_error(dead_url):
    from localcodex.adapters.ollama import OllamaServer
    from localcodex.errors import OllamaUnavailable

    with pytest.raises(OllamaUnavailable) as info:
        OllamaServer(dead_url, timeout=2).list()
    assert dead_url.replace("http://", "") in info.value.message
    assert "ollama serve" in (info.value.hint or "")
    with pytest.raises(OllamaUnavailable):
        list(OllamaServer(dead_url, timeout=2).pull("qwen3:8b"))


def test_json_envelope_is_the_only_stdout(cli):
    result = cli("paths", "--json")
    json.loads(result.stdout)  # the whole stdout is one JSON document

"""`localcodex setup` end to end against the emulator, and proven by the real Codex CLI.

The emulator starts with nothing installed; setup must pick a model that fits, pull it, bake a context into a
variant, prove the endpoint, write the profile and measure the speed, and a second run must change nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from localcodex.errors import ExitCode

CODEX = shutil.which("codex")
STEP_NAMES = ["detect", "recommend", "pull", "variant", "check", "configure", "bench"]
MODEL = "llama3.2:3b"  # small, tools-capable, in the emulator's registry and in the catalog


def steps(doc: dict) -> dict[str, dict]:
    return {s["name"]: s for s in doc["data"]["steps"]}


def posts(emu, path: str) -> list:
    return [r for r in emu.requests if r.method == "POST" and r.path == path]


@pytest.fixture
def emu(emulator_factory):
    # decoding fast enough that the benchmark is quick, slow enough that its figures are real measurements
    return emulator_factory(decode_rate=400.0, prompt_rate=20000.0)


def run_setup(cli, emu, *extra: str):
    return cli("setup", "--yes", "--json", "--host", emu.url, "--model", MODEL, *extra)


def test_setup_from_nothing_to_a_working_codex_profile(cli, emu, hermetic_env: Path, tmp_path: Path):
    result = run_setup(cli, emu)
    assert result.code == 0, result.output
    doc = result.json()
    assert doc["status"] == "ok"
    assert [s["name"] for s in doc["data"]["steps"]] == STEP_NAMES
    assert {s["status"] for s in doc["data"]["steps"]} == {"done"}, doc["data"]["steps"]
    data = doc["data"]
    assert data["model"] == MODEL and data["variant"] == f"{MODEL}-ctx{data['context'] // 1024}k"
    assert data["codex_command"] == "codex -p local_ollama"
    assert data["decode_tps"] and data["decode_tps"] > 0
    # the model was pulled, the variant created with num_ctx, and Ollama loaded it with that context
    assert len(posts(emu, "/api/pull")) == 1
    created = posts(emu, "/api/create")
    assert created and created[-1].json["parameters"]["num_ctx"] == data["context"]
    profile = hermetic_env / ".codex" / "local_ollama.config.toml"
    text = profile.read_text()
    assert f'model = "{data["variant"]}"' in text and f"model_context_window = {data['context']}" in text
    assert f'base_url = "{emu.url}/v1"' in text
    # the benchmark is in the receipts
    receipts = cli("receipts", "list", "--json").json()
    benches = [r for r in receipts["data"]["receipts"] if r["kind"] == "bench"]
    assert len(benches) == 1 and benches[0]["models"] == [data["variant"]] and benches[0]["status"] == "ok"


def test_second_run_is_a_no_op(cli, emu, hermetic_env: Path):
    assert run_setup(cli, emu).code == 0
    profile = hermetic_env / ".codex" / "local_ollama.config.toml"
    before = (profile.read_bytes(), profile.stat().st_mtime_ns)
    emu.requests.clear()
    again = run_setup(cli, emu)
    assert again.code == 0, again.output
    statuses = {name: s["status"] for name, s in steps(again.json()).items()}
    assert statuses == {"detect": "done", "recommend": "done", "pull": "unchanged", "variant": "unchanged",
                        "check": "unchanged", "configure": "unchanged", "bench": "unchanged"}
    assert (profile.read_bytes(), profile.stat().st_mtime_ns) == before
    # nothing was pulled, created, generated or benchmarked again
    assert not [r for r in emu.requests if r.method == "POST" and r.path in
                ("/api/pull", "/api/create", "/api/generate", "/api/chat", "/v1/responses")]


def test_human_output_lists_every_step_and_the_codex_command(cli, emu):
    result = cli("setup", "--yes", "--host", emu.url, "--model", MODEL, "--no-bench")
    assert result.code == 0, result.output
    for title in ("Measure this machine", "Choose a model", "Download the model", "Give it a context",
                  "Prove the /v1 endpoint", "Write the Codex profile", "Measure tokens per second"):
        assert title in result.stderr
    assert "localcodex setup: ready" in result.stdout
    assert "Start Codex:  codex -p local_ollama" in result.stdout


def test_interrupted_pull_resumes_on_the_next_run(cli, emu, monkeypatch):
    from localcodex.core import pull as pull_module

    real = pull_module._stream
    calls = {"n": 0}

    def interrupted(server, name, emit):
        def emit_then_stop(event):
            emit(event)
            if getattr(event, "phase", None) == "layer" and (event.completed or 0) > 0:
                raise KeyboardInterrupt
        calls["n"] += 1
        return real(server, name, emit_then_stop if calls["n"] == 1 else emit)

    emu.pull_rate = 5e6  # slow enough that the first progress event arrives before the layer completes
    monkeypatch.setattr(pull_module, "_stream", interrupted)
    first = run_setup(cli, emu)
    assert first.code == ExitCode.INTERRUPTED
    emu.pull_rate = 2e11
    second = run_setup(cli, emu)
    assert second.code == 0, second.output
    assert steps(second.json())["pull"]["status"] == "done"


@pytest.mark.parametrize(
    ("step", "fault", "code", "words"),
    [
        ("pull", {"kind": "pull_fail", "path": "/api/pull"}, ExitCode.SERVER_ERROR, "unexpected EOF"),
        ("variant", {"kind": "http_500", "path": "/api/create", "times": None, "message": "create exploded"},
         ExitCode.SERVER_ERROR, "create exploded"),
        ("check", {"kind": "http_500", "path": "/v1/responses", "times": None}, ExitCode.CHECK_FAILED, ""),
        ("bench", {"kind": "http_500", "path": "/api/generate", "times": None, "message": "bench exploded"},
         ExitCode.SERVER_ERROR, "bench exploded"),
    ],
)
def test_a_failure_at_each_step_stops_there_with_that_steps_message(cli, emu, step, fault, code, words):
    from emulator import Fault

    if step == "bench":  # loading the variant uses /api/generate too: let everything before the bench pass
        assert run_setup(cli, emu, "--no-bench").code == 0
    emu.inject(Fault(**fault))
    result = run_setup(cli, emu)
    assert result.code == code, result.output
    doc = result.json()
    got = steps(doc)
    assert got[step]["status"] == "failed"
    assert got[step]["retry"].startswith("localcodex ")
    assert words in got[step]["summary"]
    later = STEP_NAMES[STEP_NAMES.index(step) + 1:]
    assert all(got[name]["status"] == "not run" for name in later)
    assert doc["errors"] and doc["errors"][0]["message"]


def test_configure_failure_leaves_the_users_file_alone(cli, emu, hermetic_env: Path):
    profile = hermetic_env / ".codex" / "local_ollama.config.toml"
    profile.write_text("model = [unclosed\n")
    before = profile.read_bytes()
    result = run_setup(cli, emu, "--no-bench")
    assert result.code == ExitCode.CONFIG, result.output
    assert steps(result.json())["configure"]["status"] == "failed"
    assert ":1:9" in steps(result.json())["configure"]["summary"]  # line and column
    assert profile.read_bytes() == before


def test_no_fit_stops_at_recommend(cli, emu):
    result = cli("setup", "--yes", "--json", "--host", emu.url, "--gpu", "none", "--ram", "1GiB")
    assert result.code == ExitCode.NO_FIT, result.output
    got = steps(result.json())
    assert got["recommend"]["status"] == "failed" and got["pull"]["status"] == "not run"


def test_ollama_absent_fails_at_the_first_step_and_points_at_recommend(cli, dead_url):
    """No step shows ✓ when nothing can be done (issue 16); `recommend` still answers without Ollama."""
    result = cli("setup", "--yes", "--json", "--host", dead_url)
    assert result.code == ExitCode.OLLAMA_UNAVAILABLE, result.output
    got = steps(result.json())
    assert got["detect"]["status"] == "failed" and got["recommend"]["status"] == "not run"
    hint = result.json()["errors"][0]["hint"]
    assert "https://ollama.com/download" in hint and "localcodex recommend" in hint
    human = cli("setup", "--yes", "--host", dead_url)
    assert human.code == ExitCode.OLLAMA_UNAVAILABLE
    assert "Ollama is not running" in human.stderr and "✓" not in human.stderr
    assert cli("recommend", "--host", dead_url, "--vram", "24GiB").code == 0
    planned = cli("setup", "--dry-run", "--host", dead_url, "--vram", "24GiB")  # a dry run still shows the choice
    assert "✓ Choose a model that fits" in planned.stderr


def test_dry_run_changes_nothing(cli, emu, hermetic_env: Path):
    result = run_setup(cli, emu, "--dry-run")
    assert result.code == 0, result.output
    got = steps(result.json())
    assert [got[n]["status"] for n in ("pull", "variant", "check", "configure", "bench")] == ["planned"] * 5
    assert not list((hermetic_env / ".codex").iterdir())
    assert not [r for r in emu.requests if r.method in ("POST", "DELETE") and r.path in ("/api/pull", "/api/create")]


def test_without_a_terminal_setup_asks_for_yes(cli, emu):
    result = cli("setup", "--json", "--host", emu.url, "--model", MODEL)
    assert result.code == ExitCode.USAGE, result.output
    got = steps(result.json())
    # a first setup writes a new Codex profile: refused at once, as the step that writes it
    assert got["configure"]["status"] == "failed" and "--yes" in result.json()["errors"][0]["hint"]
    assert got["detect"]["summary"] == "not run: setup stopped at `configure`"


def test_remote_host_says_what_cannot_be_known(cli, emu, monkeypatch):
    from localcodex.paths import OllamaHost

    monkeypatch.setattr(OllamaHost, "is_local", property(lambda self: False))
    result = run_setup(cli, emu, "--no-bench", "--vram", "8GiB")
    assert result.code == 0, result.output
    assert any("another machine" in w for w in result.json()["warnings"])


@pytest.mark.codex
@pytest.mark.skipif(CODEX is None, reason="the Codex CLI is not installed")
def test_codex_exec_works_with_the_profile_setup_wrote(cli, emu, hermetic_env: Path, tmp_path: Path):
    from localcodex.adapters import codex_cli

    assert run_setup(cli, emu, "--no-bench").code == 0
    codex_home = hermetic_env / ".codex"
    (codex_home / "config.toml").write_text(codex_cli.QUIET_CONFIG)
    emu.requests.clear()
    run = codex_cli.run_exec("Reply with exactly: set up by localcodex", profile="local_ollama",
                             codex_home=codex_home, timeout=90, cwd=tmp_path, env=dict(os.environ))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "set up by localcodex" in run.stdout
    sent = posts(emu, "/v1/responses")
    assert sent and sent[0].json["model"].startswith(f"{MODEL}-ctx")


def test_a_model_the_catalog_does_not_know_is_evaluated_after_its_download(cli, emu):
    unknown = "qwen3:0.6b"  # in the emulator's registry, not in the packaged catalog
    planned = cli("setup", "--yes", "--json", "--host", emu.url, "--model", unknown, "--dry-run")
    assert planned.code == 0, planned.output
    assert steps(planned.json())["variant"]["summary"] == f"decided once {unknown} is downloaded"
    result = cli("setup", "--yes", "--json", "--host", emu.url, "--model", unknown, "--no-bench")
    assert result.code == 0, result.output
    got = steps(result.json())
    assert "not in the catalog" in got["recommend"]["summary"]
    assert "fits with" in got["pull"]["summary"]
    assert result.json()["data"]["variant"].startswith(f"{unknown}-ctx")


def test_a_model_whose_tool_calls_come_out_as_text_is_flagged_with_the_next_model(cli, emulator_factory):
    """After the pull, check re-proves tool calling; a model that writes its calls as text is named, and the next
    recommended model is offered."""
    from emulator import FakeModel

    prose = FakeModel(name="prosecoder:3b", parameter_count=3_210_000_000, size=2_019_393_189, block_count=28,
                      head_count=24, head_count_kv=8, embedding_length=3072, key_length=128, value_length=128,
                      capabilities=["completion", "tools"], tool_style="prose")
    emu = emulator_factory(decode_rate=400.0, prompt_rate=20000.0, installed=[prose])
    result = cli("setup", "--yes", "--json", "--host", emu.url, "--model", "prosecoder:3b", "--no-bench")
    doc = result.json()
    seen = doc["warnings"] + steps(doc)["check"].get("warnings", [])
    flagged = [w for w in seen if "tool calling does not work" in w]
    assert flagged, doc
    assert "localcodex setup --model " in flagged[0] and "prosecoder" not in flagged[0].split("--model ")[1]

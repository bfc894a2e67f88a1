"""`setup` the second time and the tenth: one question up front, remembered choices, loaded models, variants.

Against the emulator with a pretend 24 GiB GPU (as a user with such a card would see it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from localcodex.errors import ExitCode

GiB = 2**30
CHANGES = ("/api/pull", "/api/create", "/api/delete", "/v1/responses", "/api/generate", "/api/chat")


@pytest.fixture
def emu(emulator_factory):
    return emulator_factory(vram_bytes=24 * GiB, decode_rate=400.0, prompt_rate=20000.0)


def changing(emu) -> list:
    return [r for r in emu.requests if r.method in ("POST", "DELETE") and r.path in CHANGES]


def steps(doc: dict) -> dict[str, dict]:
    return {s["name"]: s for s in doc["data"]["steps"]}


def installed(cli, emu) -> set[str]:
    doc = cli("models", "list", "--json", "--host", emu.url).json()
    rows = doc["data"]["models"] if isinstance(doc["data"], dict) else doc["data"]
    return {row["name"] for row in rows}


def profile(home: Path) -> Path:
    return home / ".codex" / "local_ollama.config.toml"


# -- 1. plan, confirm once, then act ---------------------------------------------------------------------------


def test_without_a_terminal_and_without_yes_nothing_is_changed(cli, emu, hermetic_env: Path):
    for extra in ((), ("--json",)):
        result = cli("setup", "--host", emu.url, "--vram", "24GiB", "--model", "llama3.2:3b", *extra)
        assert result.code == ExitCode.USAGE, result.output
    assert not emu.requests  # refused before measuring anything: not even Ollama's version was asked
    assert not installed(cli, emu)
    assert not profile(hermetic_env).exists()
    doc = result.json()
    assert "--yes" in doc["errors"][0]["hint"]
    assert any("write the Codex profile" in line for line in doc["data"]["plan"])


def test_without_a_terminal_a_rerun_that_would_change_something_is_refused_after_planning(cli, emu, hermetic_env):
    assert cli("setup", "--yes", "--host", emu.url, "--vram", "24GiB", "--model", "llama3.2:3b",
               "--no-bench").code == 0
    before = profile(hermetic_env).read_bytes()
    emu.requests.clear()
    result = cli("setup", "--json", "--host", emu.url, "--model", "qwen3:0.6b", "--no-bench")
    assert result.code == ExitCode.USAGE, result.output
    assert any("download qwen3:0.6b" in line for line in result.json()["data"]["plan"])
    assert not changing(emu) and profile(hermetic_env).read_bytes() == before


def test_one_question_before_anything_changes(emu, monkeypatch, hermetic_env: Path):
    from localcodex.core.setup import SetupHooks, SetupRequest, setup

    asked: list[tuple[str, int]] = []

    def confirm(question: str) -> bool:
        asked.append((question, len(changing(emu))))
        return True

    from localcodex.wiring import live

    report = setup(SetupRequest(host=emu.url, model="llama3.2:3b", vram=24 * GiB, bench=False), live(emu.url),
                   SetupHooks(confirm=confirm))
    assert report.ok, report.failed
    assert len(asked) == 1
    question, changes_before = asked[0]
    assert changes_before == 0
    for words in ("download llama3.2:3b", f"create {report.variant}", "write the Codex profile",
                  f'+model = "{report.variant}"'):
        assert words in question, question


def test_step_times_leave_out_the_time_spent_answering(emu, monkeypatch, hermetic_env: Path):
    """The user takes an hour to answer (a clock that jumps while the question waits): no step counts it."""
    import time

    from localcodex.core.setup import SetupHooks, SetupRequest, setup
    from localcodex.wiring import live

    real, skew = time.monotonic, [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: real() + skew[0])

    def slow_answer(_question: str) -> bool:
        skew[0] += 3600.0
        return True

    report = setup(SetupRequest(host=emu.url, model="llama3.2:3b", vram=24 * GiB, bench=False), live(emu.url),
                   SetupHooks(confirm=slow_answer))
    assert report.ok, report.failed
    assert skew[0] == 3600.0 and all(step.seconds < 3600 for step in report.steps), report.steps


def test_declining_the_plan_changes_nothing(emu, hermetic_env: Path):
    from localcodex.core.setup import SetupHooks, SetupRequest, exit_code, setup
    from localcodex.wiring import live

    report = setup(SetupRequest(host=emu.url, model="llama3.2:3b", vram=24 * GiB), live(emu.url),
                   SetupHooks(confirm=lambda _q: False))
    assert not report.ok and report.failed.error.code == "declined"
    assert exit_code(report) == ExitCode.FAILURE
    assert not changing(emu) and not profile(hermetic_env).exists()


# -- 2. explicit choices remembered; a plain re-run is a no-op --------------------------------------------------


def test_a_plain_rerun_keeps_every_explicit_choice(cli, emu, hermetic_env: Path):
    first = cli("setup", "--yes", "--json", "--host", emu.url, "--model", "llama3.2:3b", "--context", "32768",
                "--vram", "24GiB", "--no-bench")
    assert first.code == 0, first.output
    assert first.json()["data"]["variant"] == "llama3.2:3b-ctx32k"
    before = profile(hermetic_env).read_bytes()
    emu.requests.clear()
    # no terminal and no --yes: fine, since there is nothing to ask
    again = cli("setup", "--json", "--host", emu.url, "--no-bench")
    assert again.code == 0, again.output
    data = again.json()["data"]
    assert data["variant"] == "llama3.2:3b-ctx32k" and data["context"] == 32768
    assert data["remembered"] == ["--model llama3.2:3b", "--context 32768", "--vram 24GiB"]
    assert profile(hermetic_env).read_bytes() == before
    assert not changing(emu), [r.path for r in changing(emu)]
    assert installed(cli, emu) == {"llama3.2:3b", "llama3.2:3b-ctx32k"}
    assert not again.json()["warnings"]


def test_a_noop_rerun_repeats_no_warning_even_without_codex(cli, emu, monkeypatch, hermetic_env: Path, tmp_path):
    """The Codex-not-installed and catalog warnings were said again on every no-op re-run."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no `codex` anywhere
    first = cli("setup", "--yes", "--json", "--host", emu.url, "--model", "llama3.2:3b", "--vram", "24GiB",
                "--no-bench")
    assert first.code == 0, first.output
    assert any("codex" in w.lower() for w in first.json()["warnings"]), first.json()["warnings"]
    again = cli("setup", "--yes", "--json", "--host", emu.url, "--no-bench")
    assert again.code == 0 and again.json()["warnings"] == [], again.json()["warnings"]


def test_recommend_right_after_setup_does_not_count_the_loaded_model_against_others(cli, emu, hermetic_env: Path):
    """setup leaves its model loaded (20 GiB of a 24 GiB GPU); other models must not rank as "partial 8% GPU"."""
    assert cli("setup", "--yes", "--host", emu.url, "--vram", "24GiB", "--model", "qwen3.5:27b",
               "--no-bench").code == 0
    assert any(r.path == "/api/generate" or r.path == "/api/chat" for r in emu.requests)  # loaded by the proof
    rows = {c["model"]: c for c in cli("recommend", "--json", "--host", emu.url, "--vram", "24GiB")
            .json()["data"]["candidates"]}
    assert rows["qwen3-coder:30b"]["placement"] == "gpu", rows["qwen3-coder:30b"]


def test_auto_forgets_a_remembered_choice(cli, emu, hermetic_env: Path):
    """`--gpu auto` clears a remembered `--gpu none` (and `auto` resets --vram, --ram, --model, --context)."""
    first = cli("setup", "--yes", "--json", "--host", emu.url, "--gpu", "none", "--ram", "64GiB", "--model",
                "llama3.2:3b", "--context", "32768", "--no-bench")
    assert first.code == 0, first.output
    plain = cli("setup", "--yes", "--json", "--host", emu.url, "--no-bench").json()["data"]
    assert plain["remembered"] == ["--model llama3.2:3b", "--context 32768", "--ram 64GiB", "--gpu none"]
    gpu = cli("setup", "--yes", "--json", "--host", emu.url, "--gpu", "auto", "--no-bench")
    assert gpu.code == 0, gpu.output
    assert "--gpu none" not in gpu.json()["data"]["remembered"]
    again = cli("setup", "--yes", "--json", "--host", emu.url, "--no-bench").json()["data"]
    assert again["remembered"] == ["--model llama3.2:3b", "--context 32768", "--ram 64GiB"]
    reset = cli("setup", "--yes", "--json", "--host", emu.url, "--model", "auto", "--ram", "auto", "--vram",
                "24GiB", "--no-bench")
    assert reset.code == 0, reset.output
    assert reset.json()["data"]["remembered"] == []
    last = cli("setup", "--yes", "--json", "--host", emu.url, "--no-bench").json()["data"]
    assert last["remembered"] == ["--vram 24GiB"] and last["model"] == reset.json()["data"]["model"]
    bad = cli("setup", "--yes", "--host", emu.url, "--context", "lots")
    assert bad.code == ExitCode.USAGE and "--context auto" in bad.stderr


def test_what_changed_is_said_and_asked(cli, emu, hermetic_env: Path):
    assert cli("setup", "--yes", "--host", emu.url, "--model", "llama3.2:3b", "--vram", "24GiB",
               "--no-bench").code == 0
    emu.set_version("0.33.0")
    result = cli("setup", "--json", "--host", emu.url, "--no-bench")
    assert result.code == ExitCode.USAGE, result.output
    assert any("Ollama changed from 0.32.15 to 0.33.0" in w for w in result.json()["warnings"])
    assert cli("setup", "--yes", "--host", emu.url, "--no-bench").code == 0
    # model gone: said, and set up again after the one answer
    cli("models", "list", "--host", emu.url)
    import ollama

    ollama.Client(host=emu.url).delete("llama3.2:3b")
    result = cli("setup", "--yes", "--json", "--host", emu.url, "--no-bench")
    assert result.code == 0, result.output
    assert any("llama3.2:3b, set up last time, is no longer installed" in w for w in result.json()["warnings"])
    assert steps(result.json())["pull"]["status"] == "done"


# -- 3. memory held by loaded models ------------------------------------------------------------------------------


def test_switching_models_while_the_first_is_loaded(cli, emu, hermetic_env: Path):
    first = cli("setup", "--yes", "--json", "--host", emu.url, "--vram", "24GiB", "--model", "qwen3.5:27b",
                "--no-bench")
    assert first.code == 0, first.output
    old = first.json()["data"]["variant"]
    assert [m["name"] for m in emu.loaded] == [old]
    switch = cli("setup", "--yes", "--json", "--host", emu.url, "--model", "qwen3-coder:30b", "--context", "32768",
                 "--no-bench")
    assert switch.code == 0, switch.output
    data = switch.json()["data"]
    assert data["variant"] == "qwen3-coder:30b-ctx32k"
    assert any(f"unload {old}" in line for line in data["plan"])
    assert any(f"remove {old}" in line for line in data["plan"])
    assert old not in installed(cli, emu)  # setup replaced its own variant instead of leaving a trail
    assert [m["name"] for m in emu.loaded] == ["qwen3-coder:30b-ctx32k"]


# -- 4. variants managed ------------------------------------------------------------------------------------------


def test_models_list_marks_the_profile_model_and_prune_removes_unused_variants(cli, emu, hermetic_env: Path):
    assert cli("setup", "--yes", "--host", emu.url, "--model", "llama3.2:3b", "--context", "32768",
               "--vram", "24GiB", "--no-bench").code == 0
    assert cli("models", "context", "llama3.2:3b", "--ctx", "16384", "--no-verify", "--host", emu.url).code == 0
    emu.install(__import__("emulator").FakeModel("mine:1b-ctx8k"))  # a name like ours, not made by localcodex
    listed = {r["name"]: r for r in cli("models", "list", "--json", "--host", emu.url).json()["data"]}
    assert listed["llama3.2:3b-ctx32k"]["profiles"] == ["local_ollama"]
    assert listed["llama3.2:3b-ctx16k"]["profiles"] == [] and listed["llama3.2:3b"]["profiles"] == []
    human = cli("models", "list", "--host", emu.url)
    assert "-p local_ollama" in next(line for line in human.stdout.splitlines() if "llama3.2:3b-ctx32k" in line)

    planned = cli("models", "prune", "--dry-run", "--json", "--host", emu.url).json()["data"]
    assert planned["removed"] == ["llama3.2:3b-ctx16k"]
    assert installed(cli, emu) >= {"llama3.2:3b-ctx16k"}
    refused = cli("models", "prune", "--host", emu.url)  # no terminal, no --yes
    assert refused.code == ExitCode.USAGE and "llama3.2:3b-ctx16k" in installed(cli, emu)
    done = cli("models", "prune", "--yes", "--host", emu.url)
    assert done.code == 0, done.output
    assert "removed llama3.2:3b-ctx16k" in done.stdout
    assert installed(cli, emu) == {"llama3.2:3b", "llama3.2:3b-ctx32k", "mine:1b-ctx8k"}


# -- 5. configure and setup write the same thing -----------------------------------------------------------------


@pytest.mark.skipif(__import__("shutil").which("codex") is None, reason="the Codex CLI is not installed")
def test_configure_with_the_same_model_keeps_what_setup_wrote(cli, emu, hermetic_env: Path):
    first = cli("setup", "--yes", "--json", "--host", emu.url, "--model", "llama3.2:3b", "--vram", "24GiB",
                "--no-bench")
    assert first.code == 0, first.output
    before = profile(hermetic_env).read_bytes()
    assert b"model_catalog_json" in before
    again = cli("configure", "--yes", "--json", "--host", emu.url, "--model", first.json()["data"]["variant"])
    assert again.code == 0, again.output
    assert again.json()["data"]["changed"] is False
    assert profile(hermetic_env).read_bytes() == before
    dropped = cli("configure", "--host", emu.url, "--model", first.json()["data"]["variant"], "--no-model-catalog")
    assert dropped.code == 0 and b"model_catalog_json" not in profile(hermetic_env).read_bytes()


# -- 7. setup --launch ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(__import__("shutil").which("codex") is None, reason="the Codex CLI is not installed")
def test_launch_starts_codex_with_the_profile_at_the_end(cli, emu, monkeypatch, tmp_path: Path):
    from localcodex.adapters import codex_cli

    started: list = []
    monkeypatch.setattr(codex_cli, "exec_codex", lambda codex, args: started.append((codex, args)))
    refused = cli("setup", "--yes", "--launch", "--json", "--host", emu.url)
    assert refused.code == ExitCode.USAGE and not started
    result = cli("setup", "--yes", "--launch", "--host", emu.url, "--model", "llama3.2:3b", "--no-bench",
                 "--vram", "24GiB")
    assert result.code == 0, result.output
    assert started and started[0][1] == ["-p", "local_ollama"]
    assert "starting: codex -p local_ollama" in result.stdout
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    missing = cli("setup", "--yes", "--launch", "--host", emu.url)
    assert missing.code == ExitCode.CODEX_MISSING and len(started) == 1


# -- 8. the emulator serves the newcomer path ----------------------------------------------------------------------


@pytest.mark.parametrize("machine", [("--gpu", "none", "--ram", "8GiB"), ("--gpu", "none", "--ram", "32GiB"),
                                     ("--vram", "8GiB"), ("--vram", "16GiB"), ("--vram", "24GiB"),
                                     ("--vram", "48GiB")])
def test_the_emulators_registry_has_what_recommend_picks(cli, emulator, machine):
    doc = cli("recommend", "--json", "--host", emulator.url, *machine).json()
    pick = doc["data"]["pick"]["model"]
    assert any(m.name == pick for m in emulator.registry.values()), pick


def test_setup_with_the_emulators_defaults_completes(cli, emulator_factory, hermetic_env: Path):
    emu = emulator_factory(vram_bytes=0)  # as `scripts/ollama-emulator` starts with no flags: CPU only
    result = cli("setup", "--yes", "--json", "--host", emu.url, "--gpu", "none", "--ram", "8GiB", "--no-bench")
    assert result.code == 0, result.output
    assert result.json()["data"]["placement"] == "100% on the CPU"


# -- 6. output that survives a pipe ---------------------------------------------------------------------------------


def test_piped_output_is_never_cut_and_has_no_trailing_spaces(cli, emu, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("COLUMNS", "80")
    deep = tmp_path / ("a-rather-long-folder-name-" * 6) / "localcodex"
    monkeypatch.setenv("LOCALCODEX_HOME", str(deep))
    outputs = [cli("paths").stdout]
    assert str(deep / "receipts.sqlite3") in outputs[0]
    result = cli("setup", "--yes", "--host", emu.url, "--model", "llama3.2:3b", "--no-bench", "--vram", "24GiB")
    assert result.code == 0, result.output
    outputs.append(result.stdout)
    assert str(deep) not in result.stdout  # (the profile is under CODEX_HOME)
    outputs.append(cli("models", "list", "--host", emu.url).stdout)
    recommended = cli("recommend", "--host", emu.url, "--vram", "24GiB", "--all").stdout
    outputs.append(recommended)
    assert "qwen3-coder:30b" in recommended and "qwen2.5-coder:14b" in recommended  # names whole, on one line
    # two benchmarked setups, then their receipts side by side: both model names whole (was "qwen3…" twice)
    for model in ("qwen3:0.6b", "qwen3.5:0.8b"):
        assert cli("setup", "--yes", "--host", emu.url, "--model", model, "--vram", "24GiB").code == 0
    ids = [r["id"] for r in cli("receipts", "list", "--json").json()["data"]["receipts"]]
    compared = cli("receipts", "compare", *map(str, ids[:2])).stdout
    outputs.append(compared)
    assert "qwen3:0.6b" in compared and "qwen3.5:0.8b" in compared
    for text in outputs:
        assert "…" not in text
        assert all(line == line.rstrip() for line in text.splitlines()), text


# -- 10. smaller defects ----------------------------------------------------------------------------------------------


def test_provider_add_refuses_the_readme_placeholder_and_says_where_the_context_came_from(cli, hermetic_env):
    placeholder = cli("provider", "add", "glm", "--base-url", "https://…", "--env-key", "GLM_API_KEY",
                      "--model", "glm-5.2")
    assert placeholder.code == ExitCode.USAGE and "placeholder" in placeholder.stderr
    assert not (hermetic_env / ".codex" / "glm.config.toml").exists()
    added = cli("provider", "add", "glm", "--env-key", "GLM_API_KEY", "--model", "glm-5.2", "--json")
    assert added.code == 0, added.output
    assert added.json()["data"]["result"]["context_source"] == "template glm"
    given = cli("provider", "add", "glm", "--env-key", "GLM_API_KEY", "--model", "glm-5.2", "--context", "131072",
                "--json")
    assert given.json()["data"]["result"]["context_source"] == "--context"


def test_no_backup_line_for_a_new_profile_and_without_ollama_the_error_is_said_once(cli, emu, dead_url):
    first = cli("setup", "--yes", "--host", emu.url, "--model", "llama3.2:3b", "--no-bench", "--vram", "24GiB")
    assert first.code == 0 and "(backup " not in first.stderr
    down = cli("setup", "--yes", "--host", dead_url, "--model", "llama3.2:3b", "--vram", "24GiB")
    assert down.code == ExitCode.OLLAMA_UNAVAILABLE
    assert down.stderr.count("Ollama is not running") == 1, down.stderr
    assert "✓" not in down.stderr and "✗ Measure this machine" in down.stderr  # no step "done" without Ollama


def test_the_receipts_database_is_private(cli, emu, hermetic_env: Path, tmp_path: Path):
    assert cli("setup", "--yes", "--host", emu.url, "--model", "llama3.2:3b", "--vram", "24GiB").code == 0
    database = tmp_path / "localcodex-data" / "receipts.sqlite3"
    assert database.stat().st_mode & 0o777 == 0o600


def test_the_question_on_a_terminal_shows_the_plan_as_written(cli, emu, monkeypatch, hermetic_env: Path):
    """The profile's diff has TOML [tables]: they must reach the terminal as text, not as rich markup."""
    from rich.prompt import Confirm
    from rich.text import Text

    from localcodex.render.output import Output

    asked: list[str] = []
    monkeypatch.setattr(Output, "interactive", property(lambda self: True))
    monkeypatch.setattr(Confirm, "ask", classmethod(lambda cls, prompt, **kw: asked.append(prompt) or False))
    result = cli("setup", "--host", emu.url, "--model", "llama3.2:3b", "--vram", "24GiB")
    assert result.code == ExitCode.FAILURE and len(asked) == 1
    shown = Text.from_markup(asked[0]).plain
    assert "+[model_providers.local_ollama]" in shown and shown.endswith("Go ahead?")
    assert "  - download llama3.2:3b" in shown
    assert not changing(emu) and not profile(hermetic_env).exists()

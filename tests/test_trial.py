"""`localcodex trial`: the real Codex CLI against the emulator, with a scripted model (tests/trial_script.py).

Each `codex exec` against the emulator takes about half a second; a whole trial about 1.5 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest
from emulator import Emulator, Fault, preset_models
from trial_script import SUMMARY, TrialScript

from localcodex.adapters import codex_cli, scratch_repo
from localcodex.adapters.codex_config import ProfileInfo, read_profile
from localcodex.core.trial import EDIT_TARGET, TrialRequest, trial
from localcodex.errors import CodexMissing, ExitCode, NotFound, UsageError
from localcodex.invocation import Invocation
from localcodex.wiring import Live

MODEL = "qwen3-coder:30b"
needs_codex = pytest.mark.skipif(shutil.which("codex") is None, reason="the Codex CLI is not installed")


@pytest.fixture
def codex_home(hermetic_env: Path) -> Path:
    """CODEX_HOME with the settings that keep Codex from reaching anything but 127.0.0.1."""
    home = hermetic_env / ".codex"
    (home / "config.toml").write_text(codex_cli.QUIET_CONFIG)
    return home


@pytest.fixture
def served(emulator_factory, codex_home: Path) -> Emulator:
    """The emulator serving MODEL, and the profile `local_ollama` that `localcodex configure` writes for it."""
    from localcodex.core.configure import ConfigureRequest, configure

    model = next(m for m in preset_models() if m.name == MODEL)
    emu = emulator_factory(installed=[model])
    configure(ConfigureRequest(model=MODEL, host=emu.url, context=32768), Live(Invocation.build()))
    emu.responder = TrialScript()
    return emu


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Default temporary folders go under tmp_path, so a kept scratch repository never litters /tmp."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def run_trial(**kwargs) -> object:
    return trial(TrialRequest(**{"step_timeout_s": 60.0, **kwargs}), Live(Invocation.build()))


def git(repo: str | Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


# ------------------------------------------------------------------------------------------ real Codex


@needs_codex
@pytest.mark.codex
def test_trial_passes_and_is_kept_in_the_receipts(served: Emulator, scratch: Path) -> None:
    from localcodex.adapters.receipts import ReceiptStore

    report = run_trial()

    assert report.ok, report.verdict
    read_only, edit = report.steps
    assert (read_only.name, read_only.status, read_only.files_changed) == ("read-only", "pass", ())
    assert read_only.last_message == SUMMARY and read_only.exit_code == 0
    assert (edit.name, edit.status, edit.files_changed) == ("small-edit", "pass", (EDIT_TARGET,))
    assert edit.tests_run == report.baseline_tests + 1 == 5 and edit.tests_passed
    assert "1 file changed, 4 insertions(+)" in edit.diff_stat
    for step in report.steps:
        assert step.input_tokens and step.output_tokens and 0 < step.wall_s < 30
    assert (report.model, report.provider, report.base_url) == (MODEL, "local_ollama", f"{served.url}/v1")
    assert report.codex_version and report.codex_version != "unknown"
    assert not report.kept and not Path(report.workdir).exists() and list(scratch.iterdir()) == []

    # What Codex sent: the configured model, an exec_command tool, and the patch's result back to the model.
    responses = [r for r in served.requests if r.path == "/v1/responses"]
    assert {r.json["model"] for r in responses} == {MODEL}
    tools = {t.get("name") for t in responses[0].json["tools"]}
    assert "exec_command" in tools
    outputs = [i for r in responses for i in r.json["input"] if i.get("type") == "function_call_output"]
    assert len(outputs) == 1 and "Success" in json.dumps(outputs[0])
    metadata = json.loads(responses[0].headers["x-codex-turn-metadata"])
    assert metadata["analytics_enabled"] is False and metadata["sandbox_mode"] == "workspace-write"

    assert report.receipt_id is not None and report.receipt_error is None
    with ReceiptStore() as store:
        saved = store.sessions(kind="trial")
    assert [s.id for s in saved] == [report.receipt_id]
    assert saved[0].status == "ok" and saved[0].models == (MODEL,) and saved[0].endpoint == f"{served.url}/v1"
    assert saved[0].settings["profile"] == "local_ollama" and saved[0].fingerprint
    assert [s["status"] for s in saved[0].details["steps"]] == ["pass", "pass"]
    # the same receipt format as `eval`: a row per step, which `eval report` reads
    with ReceiptStore() as store:
        rows = store.task_runs(report.receipt_id)
    assert [(r["name"], r["task_class"], r["profile"], r["status"]) for r in rows] == \
        [("read-only", "read-only", "local_ollama", "pass"), ("small-edit", "add-test", "local_ollama", "pass")]


@needs_codex
@pytest.mark.codex
def test_read_only_step_fails_when_the_model_edits_anyway(served: Emulator, scratch: Path) -> None:
    served.responder = TrialScript(read_only="edit")

    report = run_trial(save_receipt=False)

    read_only, edit = report.steps
    assert not report.ok and read_only.status == "fail"
    assert read_only.files_changed == ("calc/ops.py",)
    assert read_only.reason == "files changed when they should not have: calc/ops.py"
    assert any("calc/ops.py" in c for c in read_only.commands)
    # the failed trial keeps its repository; the unwanted change waits in a stash; the next step ran on a clean tree
    assert report.kept and Path(report.workdir).is_dir()
    assert "read-only step" in git(report.workdir, "stash", "list")
    assert "tidied up" in git(report.workdir, "stash", "show", "-p")
    assert edit.status == "pass" and edit.files_changed == (EDIT_TARGET,)
    assert report.verdict.startswith("profile `local_ollama` did not behave: read-only step fail")


@needs_codex
@pytest.mark.codex
def test_read_only_step_fails_when_the_answer_does_not_say_how_to_run_the_tests(served: Emulator,
                                                                              scratch: Path) -> None:
    served.responder = TrialScript(read_only="greeting")

    report = run_trial(save_receipt=False)

    read_only = report.steps[0]
    assert read_only.status == "fail" and not read_only.files_changed
    assert read_only.reason == "the answer does not say how to run the tests (no `python -m unittest`)"


@needs_codex
@pytest.mark.codex
@pytest.mark.parametrize(("behaviour", "reason"), [
    ("none", "no file changed, and the model called no tool"),
    ("prose", "no file changed: the model wrote its tool call as text instead of calling the tool"),
    ("other_file", "changed files it was told to leave alone: calc/ops.py"),
    ("failing_test", "the project's tests fail after the edit"),
])
def test_edit_step_fails_when_the_edit_is_missing_or_wrong(served: Emulator, scratch: Path, behaviour: str,
                                                           reason: str) -> None:
    served.responder = TrialScript(edit=behaviour)

    report = run_trial(save_receipt=False)

    read_only, edit = report.steps
    assert read_only.status == "pass" and edit.status == "fail" and not report.ok
    assert edit.reason.startswith(reason), edit.reason
    assert report.kept


@needs_codex
@pytest.mark.codex
def test_a_stalled_server_times_out_and_codex_is_killed(served: Emulator, scratch: Path, cli) -> None:
    served.inject(Fault("stall", path="/v1/responses", times=None))

    result = cli("trial", "--timeout", "2", "--json")

    assert result.code == ExitCode.TIMEOUT, result.output
    doc = result.json()
    read_only, edit = doc["data"]["steps"]
    assert read_only["status"] == "timeout" and read_only["exit_code"] is None
    assert read_only["reason"].startswith("no finished answer within 2 s (Codex was stopped)")
    assert 2 <= read_only["wall_s"] < 30  # the stall lasts forever
    assert edit["status"] == "skipped"
    assert doc["errors"][0]["code"] == "timeout" and "--timeout" in doc["errors"][0]["hint"]
    workdir = doc["data"]["workdir"]
    assert not [p for p in psutil.process_iter(["cwd"]) if p.info["cwd"] == workdir], "Codex outlived its timeout"


@needs_codex
@pytest.mark.codex
def test_a_server_error_is_reported_with_codexs_own_message(served: Emulator, scratch: Path, cli) -> None:
    import httpx

    httpx.request("DELETE", f"{served.url}/api/delete", json={"model": MODEL}).raise_for_status()

    result = cli("trial")

    assert result.code == ExitCode.CHECK_FAILED
    assert "read-only step error: codex exec exited 1 after 2 retries: unexpected status 404 Not Found: " \
           f"model '{MODEL}' not found" in " ".join(result.output.split())
    assert "skipped" in result.stdout and "fix: `localcodex check` and `localcodex doctor`" in result.stdout


@needs_codex
@pytest.mark.codex
def test_cli_table_and_exit_code(served: Emulator, scratch: Path, cli) -> None:
    result = cli("trial", "--keep")

    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Trial of profile local_ollama  {MODEL} via {served.url}/v1")
    read_row = next(line for line in lines if line.startswith("read-only"))
    assert " pass " in read_row and " none " in read_row
    edit_row = next(line for line in lines if line.startswith("small-edit"))
    assert " pass " in edit_row and EDIT_TARGET in edit_row and "5 tests pass" in edit_row
    assert any(line.startswith("PASS  profile `local_ollama` behaved") for line in lines)
    kept = next(line for line in lines if line.startswith("scratch repository: "))
    repo = Path(kept.removeprefix("scratch repository: "))
    assert "mean([])" in (repo / EDIT_TARGET).read_text()
    assert "read-only: pass" in result.stderr and "small-edit: pass" in result.stderr


# ------------------------------------------------------------------------------------------ before Codex runs


def test_codex_missing_says_how_to_install_it(cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              codex_home: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))

    with pytest.raises(CodexMissing, match="not on PATH") as caught:
        trial(TrialRequest(), Live(Invocation.build()))
    assert "npm install -g @openai/codex" in caught.value.hint

    result = cli("trial", "--json")
    assert result.code == ExitCode.CODEX_MISSING
    assert result.json()["errors"][0]["code"] == "codex_missing"


@needs_codex
@pytest.mark.codex
def test_missing_profile_says_to_run_configure(cli, codex_home: Path, scratch: Path) -> None:
    with pytest.raises(NotFound, match=r"no Codex profile `nope` \(.*nope.config.toml does not exist\)") as caught:
        trial(TrialRequest(profile="nope"), Live(Invocation.build()))
    assert "localcodex configure" in caught.value.hint
    assert list(scratch.iterdir()) == []  # nothing was created

    result = cli("trial")
    assert result.code == ExitCode.NOT_FOUND
    assert "run `localcodex configure --profile local_ollama` first" in result.stderr


@needs_codex
@pytest.mark.codex
def test_git_missing_is_a_clear_error_and_leaves_nothing_behind(served: Emulator, scratch: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin-without-git"
    bin_dir.mkdir()
    for tool in ("codex", "node"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))

    with pytest.raises(NotFound, match="git is not installed") as caught:
        trial(TrialRequest(save_receipt=False), Live(Invocation.build()))
    assert caught.value.code == "git_missing" and "install git" in caught.value.hint
    assert list(scratch.iterdir()) == []


def test_a_timeout_must_be_positive(cli) -> None:
    result = cli("trial", "--timeout", "0")
    assert result.code == ExitCode.USAGE and "--timeout 0: must be more than 0 seconds" in result.stderr


def test_a_folder_with_files_is_never_used(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="is not an empty folder"):
        scratch_repo.prepare_dir(folder)
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_profile_values_come_from_the_profile_file_or_an_older_profiles_table(codex_home: Path) -> None:
    (codex_home / "config.toml").write_text(
        'model = "base"\n[model_providers.p]\nname = "p"\nbase_url = "http://10.0.0.2:11434/v1"\n'
        '[profiles.old]\nmodel = "legacy"\nmodel_provider = "p"\n')
    (codex_home / "new.config.toml").write_text('model_provider = "q"\n[model_providers.q]\nname = "q"\n'
                                                'base_url = "http://127.0.0.1:8080/v1"\n')
    assert read_profile(codex_home, "old") == ProfileInfo("legacy", "p", "http://10.0.0.2:11434/v1")
    new = read_profile(codex_home, "new")
    assert (new.model, new.provider, new.base_url) == ("base", "q", "http://127.0.0.1:8080/v1")


# ------------------------------------------------------------------------------------------ the scratch project


def test_scratch_project_is_a_committed_repository_whose_tests_pass(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    scratch_repo.prepare_dir(repo)
    base = scratch_repo.create_project(repo)

    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "log", "--format=%an <%ae>").strip() == "localcodex trial <trial@localcodex.invalid>"
    assert "localcodex trial" in git(repo, "config", "--local", "user.name")
    tests = scratch_repo.run_tests(repo, 60)
    assert tests.passed and tests.tests_run == 4
    assert "python -m unittest" in (repo / "README.md").read_text()
    assert scratch_repo.changes_since(repo, base).files == ()


def test_changes_count_new_files_edits_and_commits(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    scratch_repo.prepare_dir(repo)
    base = scratch_repo.create_project(repo)
    (repo / "calc" / "__pycache__").mkdir()
    (repo / "calc" / "__pycache__" / "ops.cpython-312.pyc").write_bytes(b"\0")  # ignored, as Python writes it
    (repo / "NOTES.md").write_text("a\nb\n")
    git(repo, "add", "NOTES.md")
    git(repo, "-c", "commit.gpgsign=false", "commit", "-qm", "notes")
    (repo / "README.md").unlink()

    changes = scratch_repo.changes_since(repo, base)

    assert changes.committed
    readme_lines = len(scratch_repo.template_files()["README.md"].splitlines())
    assert {(f.path, f.added, f.deleted) for f in changes.files} == {("NOTES.md", 2, 0), ("README.md", 0, readme_lines)}
    assert "2 files changed" in changes.stat


def test_codex_json_events_are_read_as_codex_0_169_writes_them() -> None:
    stdout = "\n".join([
        '{"type":"thread.started","thread_id":"t-1"}',
        '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `m` not found."}}',
        '{"type":"turn.started"}',
        '{"type":"error","message":"Reconnecting... 1/2 (unexpected status 500 Internal Server Error: boom)"}',
        '{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc ls",'
        '"aggregated_output":"","exit_code":0,"status":"completed"}}',
        '{"type":"item.completed","item":{"id":"item_2","type":"file_change","changes":[{"path":"/r/t.py",'
        '"kind":"update"}],"status":"completed"}}',
        '{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"done"}}',
        '{"type":"turn.completed","usage":{"input_tokens":5543,"cached_input_tokens":7,'
        '"cache_write_input_tokens":0,"output_tokens":67,"reasoning_output_tokens":0}}',
        "",
    ])
    events = codex_cli.parse_exec_events(stdout)
    assert (events.thread_id, events.input_tokens, events.cached_input_tokens, events.output_tokens) == \
        ("t-1", 5543, 7, 67)
    assert events.last_message == "done" and events.completed and events.turn_failed is None
    assert events.commands == ("/bin/bash -lc ls",) and events.files_changed == ("/r/t.py",)
    assert events.tool_calls == 2 and events.retries == 1
    assert events.warnings == ("Model metadata for `m` not found.",)
    failed = codex_cli.parse_exec_events('{"type":"turn.failed","error":{"message":"unexpected status 404"}}')
    assert failed.turn_failed == "unexpected status 404" and not failed.completed and failed.input_tokens is None


def test_run_exec_kills_the_whole_process_tree_on_timeout(tmp_path: Path) -> None:
    """A stand-in `codex` that starts a grandchild, as the real Node launcher starts the native binary."""
    fake = tmp_path / "codex"
    pid_file = tmp_path / "grandchild.pid"
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pid_file}\nwait\n")
    fake.chmod(0o755)

    result = codex_cli.run_exec("hi", profile=None, codex_home=tmp_path, timeout=1, codex=fake, cwd=tmp_path)

    assert result.timed_out and 1 <= result.seconds < 30  # the grandchild sleeps 300 s
    grandchild = int(pid_file.read_text())
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE


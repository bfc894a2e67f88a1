"""`localcodex eval`: the graders on known outcomes (no model), then the real Codex CLI against the emulator with
a scripted model (tests/eval_script.py) that passes some tasks and fails others.

The Codex part runs 10 `codex exec` (about half a second each against the fast emulator, 2-4 s against the slow
one): 6 for the two-profile run, 1 + 2 for the interrupted runs, 1 for a user's task folder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from emulator import Emulator, preset_models
from eval_script import OUTCOMES, TASKS, EvalScript, apply

from localcodex.adapters import codex_cli, scratch_repo
from localcodex.core.eval.attempt import Price
from localcodex.core.eval.graders import Attempt, grade
from localcodex.core.eval.report import build_report
from localcodex.core.eval.runner import EvalRequest, parse_price, run_eval
from localcodex.core.eval.tasks import CLASSES, builtin_tasks, load_folder_tasks, select
from localcodex.errors import ConfigError, ExitCode, UsageError
from localcodex.invocation import Invocation
from localcodex.wiring import Live

MODEL = "qwen3-coder:30b"
needs_codex = pytest.mark.skipif(shutil.which("codex") is None, reason="the Codex CLI is not installed")


# ------------------------------------------------------------------------------------------ graders, no model


def _graded(tmp_path: Path, name: str, which: int):
    task = TASKS[name]
    repo = tmp_path / f"{name}-{which}"
    scratch_repo.prepare_dir(repo)
    base = scratch_repo.create_from_files(repo, dict(task.files), name)
    outcome = OUTCOMES[name][which]
    apply(repo, outcome)
    changes = scratch_repo.changes_since(repo, base)
    return grade(task.checks, Attempt(repo, base, outcome.answer, changes.paths, changes.committed,
                                      outcome.tool_calls)), outcome


def test_the_builtin_set_covers_every_class_of_work() -> None:
    tasks = builtin_tasks()
    assert len(tasks) >= 8 and len({t.name for t in tasks}) == len(tasks)
    assert {t.task_class for t in tasks} == set(CLASSES)
    assert set(OUTCOMES) == {t.name for t in tasks}  # every task has a known-good and a known-bad outcome


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_each_grader_passes_the_good_outcome_and_fails_the_bad_one(tmp_path: Path, name: str) -> None:
    good, _ = _graded(tmp_path, name, 0)
    assert good.passed, good.reason
    bad, outcome = _graded(tmp_path, name, 1)
    assert not bad.passed and bad.reason.startswith(outcome.reason), bad.reason
    again, _ = _graded(tmp_path / "again", name, 1)
    assert again == bad  # the same outcome always gets the same grade


def test_untouched_projects_fail_every_edit_task(tmp_path: Path) -> None:
    """Doing nothing never passes an edit task (and the planted failures are real)."""
    for task in builtin_tasks():
        if task.task_class == "read-only":
            continue
        repo = tmp_path / task.name
        scratch_repo.prepare_dir(repo)
        base = scratch_repo.create_from_files(repo, dict(task.files), task.name)
        verdict = grade(task.checks, Attempt(repo, base, "I did it.", (), False, 0))
        assert not verdict.passed
        assert verdict.reason.startswith("no file changed, and the model called no tool"), verdict.reason


def test_select_by_name_or_class_and_unknown_names() -> None:
    tasks = builtin_tasks()
    assert [t.name for t in select(tasks, ["read-only", "move-divide"])] == \
        ["how-to-test", "where-is-the-guard", "move-divide"]
    with pytest.raises(UsageError, match="no task or class named nope"):
        select(tasks, ["nope"])


def test_price_option() -> None:
    assert parse_price("glm=0.6/2.2") == ("glm", Price(0.6, 2.2))
    assert Price(1.0, 2.0).cost(1_000_000, 500_000) == 2.0
    for bad in ("glm", "glm=1", "=1/2", "glm=a/b", "glm=-1/2"):
        with pytest.raises(UsageError, match="PROFILE=IN/OUT"):
            parse_price(bad)


def _task_folder(root: Path, name: str, *, instruction: str, grader: str, extra: str = "") -> Path:
    folder = root / name
    (folder / "repo").mkdir(parents=True)
    (folder / "repo" / "notes.txt").write_text("hello\n")
    (folder / "task.toml").write_text(f'class = "read-only"\ngrader = {json.dumps(grader)}\n{extra}')
    (folder / "instruction.md").write_text(instruction + "\n")
    return folder


def test_users_task_folders_are_read_and_graded_by_their_command(tmp_path: Path) -> None:
    root = tmp_path / "tasks"
    _task_folder(root, "answer", instruction="Reply with exactly: 42",
                 grader='grep -q 42 "$LOCALCODEX_EVAL_ANSWER" && test -f notes.txt', extra='allowed_files = []\n')
    (task,) = load_folder_tasks(root)
    assert (task.name, task.task_class, task.instruction) == ("answer", "read-only", "Reply with exactly: 42")

    from localcodex.adapters import task_folder

    repo = tmp_path / "work" / "answer"
    scratch_repo.prepare_dir(repo)
    base = task_folder.make_repo(task_folder.read_task(root / "answer"), repo, task.setup)
    assert grade(task.checks, Attempt(repo, base, "it is 42", (), False, 0, root / "answer")).passed
    wrong = grade(task.checks, Attempt(repo, base, "it is 41", (), False, 0, root / "answer"))
    assert wrong.reason == "the grader command exited 1: no output"
    (repo / "notes.txt").write_text("changed\n")
    changed = grade(task.checks, Attempt(repo, base, "42", ("notes.txt",), False, 1, root / "answer"))
    assert changed.reason == "changed files it was told to leave alone: notes.txt"
    assert (root / "answer" / "repo" / "notes.txt").read_text() == "hello\n"  # the task folder is never written


def test_a_task_folder_without_a_grader_is_a_clear_error(tmp_path: Path) -> None:
    folder = _task_folder(tmp_path, "broken", instruction="x", grader="true")
    (folder / "task.toml").write_text('class = "bug-fix"\n')
    with pytest.raises(ConfigError, match="`grader` must be a command"):
        load_folder_tasks(folder)


def test_the_report_ranks_profiles_per_class() -> None:
    from localcodex.core.eval.attempt import TaskRun

    def run(profile: str, task_class: str, status: str, wall: float, cost: float | None) -> TaskRun:
        return TaskRun("t", "i", status, None, wall, 0, task_class, profile, 1, 1000, 100, cost=cost)

    runs = [run("a", "bug-fix", "pass", 10, 0.02), run("b", "bug-fix", "pass", 30, 0.001),
            run("a", "refactor", "pass", 5, 0.01), run("b", "refactor", "fail", 2, 0.0),
            run("a", "rename", "fail", 1, 0.0), run("b", "rename", "fail", 1, 0.0)]
    report = build_report(runs)
    assert report.classes == ("rename", "bug-fix", "refactor")
    assert report.verdict("bug-fix").sentence == \
        "bug-fix: the cheapest profile that passes it is `b` ($0.0010 per task), the fastest is `a` (10.0 s)."
    assert report.verdict("refactor").sentence == "refactor: only `a` passes it (100%, $0.0100 and 5.0 s per task)."
    assert report.verdict("rename").cheapest is None and "no profile passes it" in report.verdict("rename").sentence


# ------------------------------------------------------------------------------------------ real Codex


@pytest.fixture
def codex_home(hermetic_env: Path) -> Path:
    home = hermetic_env / ".codex"
    (home / "config.toml").write_text(codex_cli.QUIET_CONFIG)
    return home


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _serve(emulator_factory, profile: str, **rates) -> Emulator:
    from localcodex.core.configure import ConfigureRequest, configure

    model = next(m for m in preset_models() if m.name == MODEL)
    emu = emulator_factory(installed=[model], **rates)
    configure(ConfigureRequest(model=MODEL, host=emu.url, context=32768, profile=profile,
                               provider_id=f"{profile}_ollama"), Live(Invocation.build()))
    return emu


@needs_codex
@pytest.mark.codex
def test_two_profiles_pass_and_fail_as_scripted_and_the_report_ranks_them(
        emulator_factory, codex_home: Path, scratch: Path, cli) -> None:
    fast = _serve(emulator_factory, "fast")
    slow = _serve(emulator_factory, "slow", prompt_rate=3000.0)  # ~2 s more per request (5k-token prompts)
    fast.responder = EvalScript({"fix-failing-test": "bad"})
    slow.responder = EvalScript({"how-to-test": "bad"})

    result = cli("eval", "-p", "fast", "-p", "slow", "--task", "how-to-test", "--task", "regression-test",
                 "--task", "fix-failing-test", "--price", "fast=1/2", "--price", "slow=0.5/1", "--json")

    assert result.code == 0, result.output
    doc = result.json()
    runs = {(r["name"], r["profile"]): r for r in doc["data"]["runs"]}
    assert {k: r["status"] for k, r in runs.items()} == {
        ("how-to-test", "fast"): "pass", ("how-to-test", "slow"): "fail",
        ("regression-test", "fast"): "pass", ("regression-test", "slow"): "pass",
        ("fix-failing-test", "fast"): "fail", ("fix-failing-test", "slow"): "pass"}
    assert runs["how-to-test", "slow"]["reason"].startswith("the answer does not mention `python -m unittest`")
    assert runs["fix-failing-test", "fast"]["reason"] == \
        "tests/test_calc.py was not changed (changed instead: calc/ops.py)"
    edit = runs["regression-test", "fast"]
    assert edit["files_changed"] == ["tests/test_calc.py"] and edit["tests_run"] == 5 and edit["tool_calls"] == 1
    for run in doc["data"]["runs"]:
        assert run["input_tokens"] > 1000 and run["output_tokens"] > 0 and run["cost"] > 0
    assert runs["how-to-test", "fast"]["workdir"] is None  # passed: deleted
    assert Path(runs["fix-failing-test", "fast"]["workdir"]).is_dir()  # failed: kept for inspection
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    done = [e for e in events if e["event"] == "eval.attempt_done"]
    assert [(e["index"], e["total"]) for e in done] == [(i, 6) for i in range(1, 7)]
    assert done[-1]["remaining_s"] == 0 and all("elapsed_s" in e for e in done)
    receipt = doc["data"]["receipt_id"]

    report = cli("eval", "report", "--format", "json")
    assert report.code == 0, report.output
    data = json.loads(report.stdout)
    rows = {(r["task_class"], r["profile"]): (r["passed"], r["attempts"]) for r in data["rows"]}
    assert rows == {("read-only", "fast"): (1, 1), ("read-only", "slow"): (0, 1), ("add-test", "fast"): (1, 1),
                    ("add-test", "slow"): (1, 1), ("fix-test", "fast"): (0, 1), ("fix-test", "slow"): (1, 1)}
    verdicts = {v["task_class"]: v for v in data["verdicts"]}
    assert (verdicts["read-only"]["cheapest"], verdicts["read-only"]["fastest"]) == ("fast", "fast")
    assert (verdicts["fix-test"]["cheapest"], verdicts["fix-test"]["fastest"]) == ("slow", "slow")
    # add-test: both pass; the slow server is cheaper per token and slower
    assert (verdicts["add-test"]["cheapest"], verdicts["add-test"]["fastest"]) == ("slow", "fast")
    assert verdicts["add-test"]["sentence"].startswith(
        "add-test: the cheapest profile that passes it is `slow` ($")

    markdown = cli("eval", "report", str(receipt)).stdout
    assert "- add-test: the cheapest profile that passes it is `slow`" in markdown
    assert "| fix-test | fast | 0/1 (0%) |" in markdown and "| fix-test | slow | 1/1 (100%) |" in markdown
    csv_text = cli("eval", "report", "--format", "csv").stdout.splitlines()
    assert csv_text[0].startswith("class,profile,attempts,passed,pass_rate")
    assert "read-only,slow,1,0,0.0," in "\n".join(csv_text)
    listing = cli("receipts", "list", "--json").json()["data"]["receipts"]
    assert [(r["kind"], r["headline"]) for r in listing] == [("eval", "4/6 attempts passed")]
    compare = cli("receipts", "compare", str(receipt))
    assert compare.code == 0 and "- fix-test: only `slow` passes it" in compare.stdout


@needs_codex
@pytest.mark.codex
def test_an_interrupted_run_keeps_its_finished_receipts(emulator_factory, codex_home: Path, scratch: Path,
                                                         cli) -> None:
    from localcodex.adapters.receipts import ReceiptStore

    emu = _serve(emulator_factory, "local_ollama")
    emu.responder = EvalScript()

    def stop_at_the_second(event) -> None:
        if event.kind == "attempt_started" and event.index == 2:
            raise KeyboardInterrupt

    tasks = select(builtin_tasks(), ["read-only"])
    result = run_eval(EvalRequest(("local_ollama",), tasks, repeat=2, timeout_s=60), Live(Invocation.build()),
                      stop_at_the_second)

    assert result.interrupted and result.planned == 4
    assert [(r.name, r.status) for r in result.runs] == [("how-to-test", "pass")]
    with ReceiptStore() as store:
        (session,) = store.sessions(kind="eval")
        assert session.status == "interrupted" and session.error == "interrupted after 1 of 4 attempts"
        assert [r["name"] for r in store.task_runs(session.id)] == ["how-to-test"]
    report = cli("eval", "report")
    assert "The run was interrupted" in report.stdout and "| read-only | local_ollama | 1/1 (100%) |" in report.stdout


@needs_codex
@pytest.mark.codex
def test_a_users_task_folder_runs_through_codex(emulator_factory, codex_home: Path, scratch: Path, cli,
                                               tmp_path: Path) -> None:
    _serve(emulator_factory, "local_ollama")  # the emulator's default model answers "Reply with exactly: X"
    root = tmp_path / "tasks"
    _task_folder(root, "answer", instruction="Reply with exactly: 42", grader='grep -q 42 "$LOCALCODEX_EVAL_ANSWER"')

    result = cli("eval", "--tasks", root, "--timeout", "60")

    assert result.code == 0, result.output
    assert "read-only: only `local_ollama` passes it (100%" in " ".join(result.stdout.split())
    assert "[1/1] answer × local_ollama #1: pass in" in result.stderr


def test_eval_refuses_bad_options_before_running_anything(cli, codex_home: Path) -> None:
    assert cli("eval", "--repeat", "0").code == ExitCode.USAGE
    bad = cli("eval", "--task", "nope", "--json")
    assert bad.code == ExitCode.USAGE and bad.json()["errors"][0]["message"].startswith("no task or class named")
    price = cli("eval", "-p", "a", "--price", "b=1/2")
    assert price.code == ExitCode.USAGE and "not a --profile of this run" in price.stderr
    assert cli("eval", "report").code == ExitCode.NOT_FOUND


@needs_codex
@pytest.mark.codex
def test_ctrl_c_stops_the_cli_and_keeps_what_finished(emulator_factory, codex_home: Path, scratch: Path,
                                                       tmp_path: Path) -> None:
    """A real SIGINT to `localcodex eval` while Codex works on the second task: exit 130, the first attempt is
    in the receipts, and no Codex process outlives the command."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    import psutil

    from localcodex.adapters.receipts import ReceiptStore

    emu = _serve(emulator_factory, "local_ollama")
    release = threading.Event()
    script = EvalScript()

    def responder(req):
        if TASKS["where-is-the-guard"].instruction in req.last_user_text:
            release.wait(60)  # the model "thinks" until the test is over
        return script(req)

    emu.responder = responder
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "TMPDIR": str(scratch)}
    # As from a terminal: Ctrl-C reaches the command. A suite started in the background by a non-interactive shell
    # (as CI runners may) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler at all:
    # the signal would be lost and the run would finish (seen: exit 0 after the 60 s hold).
    proc = subprocess.Popen([sys.executable, "-m", "localcodex", "eval", "--task", "read-only", "--timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("[1/2] how-to-test"):
                break
        while not any(r.path == "/v1/responses" and "Which file" in json.dumps(r.json) for r in emu.requests):
            assert proc.poll() is None, "".join(lines)
            threading.Event().wait(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=120)  # a hang guard: a loaded 2-core CI needed over 30 s
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, stdout
    assert "interrupted after 1 of 2 attempts; the finished ones are kept" in " ".join(stdout.split())
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    with ReceiptStore() as store:
        (session,) = store.sessions(kind="eval")
        assert session.status == "interrupted"
        assert [(r["name"], r["status"]) for r in store.task_runs(session.id)] == [("how-to-test", "pass")]

"""`localcodex trial`: try a Codex profile the careful way, on a throw-away project, and keep the result.

A profile that passes `check` can still fail in Codex's hands: the model may not call tools, may edit files when
asked only to read, or may never finish. So the trial runs the real `codex exec -p PROFILE` twice in a scratch
git repository holding a small Python project with tests:

1. **read-only**: "summarize how to run the tests, do not edit files"; behaving means Codex exits 0, the model
   answers, and `git status` shows nothing changed (a commit counts as a change).
2. **small-edit**: "add one regression test to tests/test_calc.py"; behaving means that file changed, no other
   file did, and the project's tests pass with one test more than before.

Codex runs with `-s workspace-write` in both steps: the sandbox lets it write inside the scratch repository only,
so the first step measures the model's discipline rather than the sandbox's. Each step is bounded by a timeout
after which Codex's whole process group is killed. When the first step cannot reach the model (Codex error or
timeout), the second is skipped: it would fail the same way, only slower. The scratch repository is deleted
after a clean trial and kept otherwise (or always, with `keep`), so a failure can be inspected: the read-only
step's changes are kept in a `git stash`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localcodex.adapters import codex_config
from localcodex.errors import CodexMissing, UsageError

READ_ONLY = "read-only"
SMALL_EDIT = "small-edit"
EDIT_TARGET = "tests/test_calc.py"
TEST_COMMAND = "python -m unittest"
READ_ONLY_TASK = (
    "Summarize how to run this project's tests: give the exact command and say briefly what the tests cover. "
    "Do not edit, create or delete any files."
)
EDIT_TASK = (
    f"Add one regression test to {EDIT_TARGET} that checks that mean([]) raises ValueError. "
    "Keep the existing tests as they are, and do not change any other file."
)
# Codex flags for both steps: writes are allowed inside the scratch repository only, and a dead server fails in
# seconds instead of being retried until the timeout (`-c` so that a Codex without that feature only warns).
CODEX_ARGS = ("--json", "-s", "workspace-write", "-c", "features.unbounded_connection_retries=false")
DEFAULT_TIMEOUT_S = 300.0
MESSAGE_LIMIT = 600
TEST_TIMEOUT_S = 60.0

# Step statuses: pass | fail (Codex ran, the model misbehaved) | error (Codex failed) | timeout | skipped
PASS, FAIL, ERROR, TIMEOUT, SKIPPED = "pass", "fail", "error", "timeout", "skipped"


@dataclass(frozen=True)
class TrialRequest:
    profile: str = "local_ollama"
    codex_home: Path | None = None  # default: $CODEX_HOME or ~/.codex
    workdir: Path | None = None  # default: a fresh temporary folder (kept when the trial fails)
    step_timeout_s: float = DEFAULT_TIMEOUT_S
    codex: Path | None = None  # default: `codex` on PATH
    keep: bool = False  # keep the scratch repository even after a clean trial
    save_receipt: bool = True


@dataclass(frozen=True)
class StepResult:
    name: str  # READ_ONLY | SMALL_EDIT
    task: str  # the prompt Codex was given
    status: str  # pass | fail | error | timeout | skipped
    reason: str | None  # why it did not pass, in one line
    wall_s: float
    exit_code: int | None  # Codex's; None when it was killed or never ran
    input_tokens: int | None = None
    output_tokens: int | None = None
    files_changed: tuple[str, ...] = ()
    diff_stat: str = ""
    committed: bool = False  # Codex made a commit of its own
    commands: tuple[str, ...] = ()  # shell commands Codex ran for the model
    tool_calls: int = 0  # commands run and patches applied for the model
    last_message: str | None = None  # the model's last answer, truncated
    retries: int = 0  # "Reconnecting… n/m": requests Codex had to repeat
    tests_run: int | None = None  # small-edit: tests counted after the edit
    tests_passed: bool | None = None
    notes: tuple[str, ...] = ()
    thread_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == PASS

    @property
    def tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass(frozen=True)
class TrialReport:
    ok: bool
    verdict: str
    profile: str
    model: str | None
    provider: str | None
    base_url: str | None
    codex_path: str
    codex_version: str | None
    workdir: str
    kept: bool
    steps: tuple[StepResult, ...]
    started_at: str
    wall_s: float
    timeout_s: float
    baseline_tests: int | None = None
    receipt_id: int | None = None
    receipt_error: str | None = None

    @property
    def timed_out(self) -> bool:
        return any(s.status == TIMEOUT for s in self.steps)


@dataclass(frozen=True)
class TrialEvent:
    kind: str  # "project" | "step_started" | "step_done" | "receipt"
    message: str
    step: StepResult | None = None
    name: str | None = None


Progress = Callable[[TrialEvent], None]


@dataclass
class _Context:
    request: TrialRequest
    codex: Path
    codex_home: Path
    workdir: Path
    base: str
    baseline_tests: int | None
    on_progress: Progress
    base_url: str | None
    steps: list[StepResult] = field(default_factory=list)


def trial(request: TrialRequest, on_progress: Progress | None = None) -> TrialReport:
    """Run the two steps and return what happened; raises only when the trial cannot start."""
    from localcodex.adapters import codex_cli, scratch_repo
    from localcodex.paths import codex_home as default_codex_home

    notify = on_progress or (lambda _event: None)
    if request.step_timeout_s <= 0:
        raise UsageError(f"--timeout {request.step_timeout_s:g}: must be more than 0 seconds", "e.g. --timeout 300")
    codex = _find_codex(request.codex)
    info = codex_cli.codex_info(codex)
    codex_home = request.codex_home or default_codex_home()
    profile = codex_config.read_profile(codex_home, request.profile)
    started_at, clock = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.monotonic()
    workdir, owned = _workdir(request.workdir)
    try:
        base = scratch_repo.create_project(workdir)
    except BaseException:
        if owned:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    baseline = scratch_repo.run_tests(workdir, TEST_TIMEOUT_S)
    notify(TrialEvent("project", f"scratch project ready in {workdir}"))
    ctx = _Context(request, codex, codex_home, workdir, base, baseline.tests_run if baseline.passed else None, notify,
                   profile.base_url)
    for name, task, judge in ((READ_ONLY, READ_ONLY_TASK, _read_only), (SMALL_EDIT, EDIT_TASK, _small_edit)):
        ctx.steps.append(_step(ctx, name, task, judge))
    ok = all(s.ok for s in ctx.steps)
    kept = request.keep or not ok or not owned
    if not kept:
        shutil.rmtree(workdir, ignore_errors=True)
    report = TrialReport(
        ok=ok, verdict=_verdict(ctx.steps, request.profile), profile=request.profile, model=profile.model,
        provider=profile.provider, base_url=profile.base_url, codex_path=str(codex),
        codex_version=info.version_str if info else None, workdir=str(workdir), kept=kept, steps=tuple(ctx.steps),
        started_at=started_at, wall_s=round(time.monotonic() - clock, 3), timeout_s=request.step_timeout_s,
        baseline_tests=ctx.baseline_tests,
    )
    return _save(report, notify) if request.save_receipt else report


def _find_codex(explicit: Path | None) -> Path:
    from localcodex.adapters import codex_cli

    codex = explicit or codex_cli.find_codex()
    if codex is None or not Path(codex).exists():
        where = f"{explicit} does not exist" if explicit else "the Codex CLI (`codex`) is not on PATH"
        raise CodexMissing(f"{where}; a trial runs the real Codex", codex_cli.INSTALL_HINT)
    return Path(codex)


def _workdir(explicit: Path | None) -> tuple[Path, bool]:
    from localcodex.adapters import scratch_repo

    if explicit is None:
        return Path(tempfile.mkdtemp(prefix="localcodex-trial-")), True
    scratch_repo.prepare_dir(explicit)
    return explicit, False


# ------------------------------------------------------------------------------------------------- profile



# ------------------------------------------------------------------------------------------------- steps


Judge = Callable[["_Context", StepResult], StepResult]


def _step(ctx: _Context, name: str, task: str, judge: Judge) -> StepResult:
    blocked = next((s for s in ctx.steps if s.status in (ERROR, TIMEOUT, SKIPPED)), None)
    if blocked is not None:
        skipped = StepResult(name, task, SKIPPED, f"skipped: the {blocked.name} step could not get an answer "
                             "from the model", 0.0, None)
        ctx.on_progress(TrialEvent("step_done", f"{name}: skipped", skipped, name))
        return skipped
    ctx.on_progress(TrialEvent("step_started", f"{name}: running codex exec -p {ctx.request.profile}", name=name))
    result = _run_codex(ctx, name, task)
    if result.status not in (ERROR, TIMEOUT):
        result = judge(ctx, result)
    ctx.on_progress(TrialEvent("step_done", f"{name}: {result.status}", result, name))
    return result


def _run_codex(ctx: _Context, name: str, task: str) -> StepResult:
    from localcodex.adapters import codex_cli, scratch_repo

    run = codex_cli.run_exec(task, profile=ctx.request.profile, codex_home=ctx.codex_home,
                             timeout=ctx.request.step_timeout_s, extra_args=CODEX_ARGS, cwd=ctx.workdir,
                             codex=ctx.codex)
    events = codex_cli.parse_exec_events(run.stdout)
    changes = scratch_repo.changes_since(ctx.workdir, ctx.base)
    status, reason = PASS, None
    if run.timed_out:
        status, reason = TIMEOUT, _timeout_reason(ctx.request.step_timeout_s, events)
    elif run.returncode != 0 or events.turn_failed:
        status, reason = ERROR, _codex_failure(run, events, ctx.base_url)
    return StepResult(
        name=name, task=task, status=status, reason=reason, wall_s=round(run.seconds, 3),
        exit_code=None if run.timed_out else run.returncode, input_tokens=events.input_tokens,
        output_tokens=events.output_tokens, files_changed=changes.paths, diff_stat=changes.stat,
        committed=changes.committed, commands=events.commands, tool_calls=events.tool_calls,
        last_message=_truncate(events.last_message), retries=events.retries, thread_id=events.thread_id,
    )


def _timeout_reason(timeout: float, events: Any) -> str:
    last = events.errors[-1] if events.errors else None
    tail = f"; Codex's last message: {last}" if last else ""
    return f"no finished answer within {timeout:g} s (Codex was stopped){tail}"


def _codex_failure(run: Any, events: Any, base_url: str | None) -> str:
    """The one line that says why Codex failed: its own error text, else its first error line on stderr."""
    text = events.turn_failed or (events.errors[-1] if events.errors else None) or _stderr_error(run.stderr)
    retried = f" after {events.retries} retries" if events.retries else ""
    where = f" (base_url {base_url})" if base_url and "url:" not in text else ""
    return f"codex exec exited {run.returncode}{retried}: {text}{where}"


_STDERR_NOISE = ("Reading additional input from stdin", "WARNING: proceeding, even though we could not create PATH")


def _stderr_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith(_STDERR_NOISE)]
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    return (errors or lines or ["no error message"])[0 if errors else -1]


def _truncate(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1].rstrip() + "…"


def _read_only(ctx: _Context, result: StepResult) -> StepResult:
    from localcodex.adapters import scratch_repo

    notes = () if TEST_COMMAND in (result.last_message or "") else (
        f"the answer does not mention `{TEST_COMMAND}`, the command README.md gives",)
    if result.files_changed or result.committed:
        scratch_repo.set_aside(ctx.workdir, "changes Codex made in the read-only step of localcodex trial")
        changed = ", ".join(result.files_changed) or "nothing in the tree"
        commit = " and made a commit" if result.committed else ""
        return replace(result, status=FAIL, notes=notes,
                       reason=f"files changed when they should not have: {changed}{commit}")
    if not result.last_message:
        return replace(result, status=FAIL, reason="the model gave no answer", notes=notes)
    if notes:  # an answer that does not say how to run the tests did not do the task
        return replace(result, status=FAIL,
                       reason=f"the answer does not say how to run the tests (no `{TEST_COMMAND}`)")
    return replace(result, notes=notes)


def _small_edit(ctx: _Context, result: StepResult) -> StepResult:
    from localcodex.adapters import scratch_repo

    reason = _edit_problem(result)
    if reason is not None:
        return replace(result, status=FAIL, reason=reason)
    tests = scratch_repo.run_tests(ctx.workdir, TEST_TIMEOUT_S)
    result = replace(result, tests_run=tests.tests_run, tests_passed=tests.passed)
    if not tests.passed:
        last = tests.output.splitlines()[-1] if tests.output else "no output"
        return replace(result, status=FAIL, reason=f"the project's tests fail after the edit ({TEST_COMMAND}: {last})")
    if ctx.baseline_tests is not None and (tests.tests_run or 0) <= ctx.baseline_tests:
        return replace(result, status=FAIL,
                       reason=f"no test was added: {TEST_COMMAND} still runs {tests.tests_run} tests")
    return result


_TEXT_CALL = re.compile(r'"name"\s*:.*"arguments"\s*:', re.DOTALL)


def _edit_problem(result: StepResult) -> str | None:
    if not result.files_changed:
        if not result.tool_calls and _TEXT_CALL.search(result.last_message or ""):
            return ("no file changed: the model wrote its tool call as text instead of calling the tool (its chat "
                    "template does not do tool calls through this server)")
        if not result.tool_calls:
            return ("no file changed, and the model called no tool (a model that cannot call tools cannot edit "
                    "files through Codex)")
        return f"no file changed, although Codex ran {result.tool_calls} tool call(s) for the model"
    others = [p for p in result.files_changed if p != EDIT_TARGET]
    if EDIT_TARGET not in result.files_changed:
        return f"{EDIT_TARGET} was not changed (changed instead: {', '.join(others)})"
    if others:
        return f"changed files it was told to leave alone: {', '.join(others)}"
    return None


def _verdict(steps: list[StepResult], profile: str) -> str:
    if all(s.ok for s in steps):
        return f"profile `{profile}` behaved: it read without writing, and made the small edit it was asked for"
    bad = next(s for s in steps if not s.ok and s.status != SKIPPED)
    return f"profile `{profile}` did not behave: {bad.name} step {bad.status}: {bad.reason}"


# ------------------------------------------------------------------------------------------------- receipt


def _save(report: TrialReport, notify: Progress) -> TrialReport:
    """Keep the trial in the receipts; a receipts database that cannot be used costs the receipt, not the trial."""
    from localcodex.adapters.receipts import ReceiptStore
    from localcodex.core.fingerprint import fingerprint, this_machine
    from localcodex.errors import LocalcodexError
    from localcodex.render.output import to_jsonable

    try:
        machine = fingerprint(this_machine())
        with ReceiptStore() as store:
            receipt = store.record_trial(
                "trial", {"steps": to_jsonable(report.steps), "verdict": report.verdict, "wall_s": report.wall_s,
                          "workdir": report.workdir if report.kept else None},
                fingerprint=machine, status="ok" if report.ok else "failed",
                models=[report.model] if report.model else [], endpoint=report.base_url,
                endpoint_local=_is_local(report.base_url), api="responses",
                settings={"profile": report.profile, "provider": report.provider, "timeout_s": report.timeout_s,
                          "codex_version": report.codex_version},
                error=None if report.ok else report.verdict,
            )
    except LocalcodexError as exc:
        notify(TrialEvent("receipt", f"the trial was not saved to the receipts: {exc.message}"))
        return replace(report, receipt_error=exc.message)
    notify(TrialEvent("receipt", f"saved as receipt {receipt}"))
    return replace(report, receipt_id=receipt)


def _is_local(url: str | None) -> bool:
    from localcodex.paths import ollama_host

    return ollama_host(url, {}).is_local if url else True

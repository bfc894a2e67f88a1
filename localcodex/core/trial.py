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

The trial is a quick subset of `localcodex eval`: each step is one attempt of the eval engine
(`core.eval.attempt`), graded by the eval graders, and saved in the same receipt format (a session of kind
`trial` with a row per step).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from localcodex.adapters import codex_config
from localcodex.core.eval.attempt import ERROR, PASS, SKIPPED, TIMEOUT, Runner, TaskRun, attempt, find_codex
from localcodex.core.eval.graders import TEST_COMMAND, Answers, ChangedOnly, Check, NoChanges, TestsPass
from localcodex.core.ports import Live
from localcodex.errors import UsageError

READ_ONLY = "read-only"
SMALL_EDIT = "small-edit"
EDIT_TARGET = "tests/test_calc.py"
READ_ONLY_TASK = (
    "Summarize how to run this project's tests: give the exact command and say briefly what the tests cover. "
    "Do not edit, create or delete any files."
)
EDIT_TASK = (
    f"Add one regression test to {EDIT_TARGET} that checks that mean([]) raises ValueError. "
    "Keep the existing tests as they are, and do not change any other file."
)
DEFAULT_TIMEOUT_S = 300.0
TEST_TIMEOUT_S = 60.0
FAIL = "fail"
__all__ = ["ERROR", "FAIL", "PASS", "SKIPPED", "TEST_COMMAND", "TIMEOUT", "StepResult", "TrialReport", "trial"]

# A trial step is one attempt of the eval engine.
StepResult = TaskRun


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
    runner: Runner
    workdir: Path
    base: str
    baseline_tests: int | None
    on_progress: Progress
    steps: list[StepResult] = field(default_factory=list)


def trial(request: TrialRequest, live: Live, on_progress: Progress | None = None) -> TrialReport:
    """Run the two steps and return what happened; raises only when the trial cannot start.

    `live` gives the invocation (its Codex home) and the receipts store the trial is kept in."""
    from localcodex.adapters import codex_cli, scratch_repo

    notify = on_progress or (lambda _event: None)
    if request.step_timeout_s <= 0:
        raise UsageError(f"--timeout {request.step_timeout_s:g}: must be more than 0 seconds", "e.g. --timeout 300")
    codex = find_codex(request.codex, "a trial")
    info = codex_cli.codex_info(codex)
    codex_home = request.codex_home or live.inv.codex_home
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
    baseline_tests = baseline.tests_run if baseline.passed else None
    ctx = _Context(request, Runner(codex, codex_home, profile.base_url), workdir, base, baseline_tests, notify)
    # an answer that does not say how to run the tests did not do the task
    read_only: tuple[Check, ...] = (NoChanges(), Answers(
        (TEST_COMMAND,), "the command README.md gives",
        failure=f"the answer does not say how to run the tests (no `{TEST_COMMAND}`)"))
    edit: tuple[Check, ...] = (ChangedOnly((EDIT_TARGET,), (EDIT_TARGET,)), TestsPass(more_than=baseline_tests))
    ctx.steps.append(_step(ctx, READ_ONLY, READ_ONLY_TASK, read_only, "read-only"))
    ctx.steps.append(_step(ctx, SMALL_EDIT, EDIT_TASK, edit, "add-test"))
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
    return _save(report, live, notify) if request.save_receipt else report


def _workdir(explicit: Path | None) -> tuple[Path, bool]:
    from localcodex.adapters import scratch_repo

    if explicit is None:
        return Path(tempfile.mkdtemp(prefix="localcodex-trial-")), True
    scratch_repo.prepare_dir(explicit)
    return explicit, False


# ------------------------------------------------------------------------------------------------- steps


def _step(ctx: _Context, name: str, task: str, checks: tuple[Check, ...], task_class: str) -> StepResult:
    from localcodex.adapters import scratch_repo

    blocked = next((s for s in ctx.steps if s.status in (ERROR, TIMEOUT, SKIPPED)), None)
    if blocked is not None:
        skipped = StepResult(name, task, SKIPPED, f"skipped: the {blocked.name} step could not get an answer "
                             "from the model", 0.0, None, task_class=task_class, profile=ctx.request.profile)
        ctx.on_progress(TrialEvent("step_done", f"{name}: skipped", skipped, name))
        return skipped
    ctx.on_progress(TrialEvent("step_started", f"{name}: running codex exec -p {ctx.request.profile}", name=name))
    result = attempt(ctx.runner, profile=ctx.request.profile, name=name, instruction=task, workdir=ctx.workdir,
                     base=ctx.base, checks=checks, timeout_s=ctx.request.step_timeout_s, task_class=task_class)
    if name == READ_ONLY and (result.files_changed or result.committed):
        scratch_repo.set_aside(ctx.workdir, "changes Codex made in the read-only step of localcodex trial")
    ctx.on_progress(TrialEvent("step_done", f"{name}: {result.status}", result, name))
    return result


def _verdict(steps: list[StepResult], profile: str) -> str:
    if all(s.ok for s in steps):
        return f"profile `{profile}` behaved: it read without writing, and made the small edit it was asked for"
    bad = next(s for s in steps if not s.ok and s.status != SKIPPED)
    return f"profile `{profile}` did not behave: {bad.name} step {bad.status}: {bad.reason}"


# ------------------------------------------------------------------------------------------------- receipt


def _save(report: TrialReport, live: Live, notify: Progress) -> TrialReport:
    """Keep the trial in the receipts; a receipts database that cannot be used costs the receipt, not the trial."""
    from localcodex.core.eval.attempt import save_session
    from localcodex.domain.envelope import to_jsonable
    from localcodex.errors import LocalcodexError

    try:
        receipt = save_session(
            live, "trial", report.steps,
            details={"steps": to_jsonable(report.steps), "verdict": report.verdict, "wall_s": report.wall_s,
                     "workdir": report.workdir if report.kept else None},
            status="ok" if report.ok else "failed", models=[report.model] if report.model else [],
            endpoint=report.base_url,
            settings={"profile": report.profile, "provider": report.provider, "timeout_s": report.timeout_s,
                      "codex_version": report.codex_version},
            error=None if report.ok else report.verdict,
        )
    except LocalcodexError as exc:
        notify(TrialEvent("receipt", f"the trial was not saved to the receipts: {exc.message}"))
        return replace(report, receipt_error=exc.message)
    notify(TrialEvent("receipt", f"saved as receipt {receipt}"))
    return replace(report, receipt_id=receipt)

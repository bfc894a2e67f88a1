"""One attempt: the real `codex exec -p PROFILE --json` on one task in its scratch repository, then its grade.

This is the engine `eval` runs for every task × profile × repeat and `trial` runs for its two steps. Codex runs
with `-s workspace-write` (it may write inside the scratch repository only), a time limit after which its whole
process group is killed, and connection retries bounded so that a dead server fails in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from localcodex.core.eval.graders import Attempt, Check, grade
from localcodex.core.ports import Live
from localcodex.domain.fingerprint import Fingerprint, fingerprint
from localcodex.domain.urls import locality

CODEX_ARGS = ("--json", "-s", "workspace-write", "-c", "features.unbounded_connection_retries=false")
MESSAGE_LIMIT = 600

# Statuses: pass | fail (Codex ran, the model's work did not pass) | error (Codex failed) | timeout | skipped
PASS, FAIL, ERROR, TIMEOUT, SKIPPED = "pass", "fail", "error", "timeout", "skipped"


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens."""

    input: float
    output: float

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        if input_tokens is None and output_tokens is None:
            return None
        return round(((input_tokens or 0) * self.input + (output_tokens or 0) * self.output) / 1e6, 6)


@dataclass(frozen=True)
class TaskRun:
    """One attempt at one task with one profile: the receipt's row (the same for `eval` and `trial`)."""

    name: str  # the task's name (trial: its step)
    task: str  # the instruction Codex was given
    status: str  # pass | fail | error | timeout | skipped
    reason: str | None  # why it did not pass, in one line
    wall_s: float
    exit_code: int | None  # Codex's; None when it was killed or never ran
    task_class: str = ""
    profile: str = ""
    repeat: int = 1
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    files_changed: tuple[str, ...] = ()
    diff_stat: str = ""
    committed: bool = False  # Codex made a commit of its own
    commands: tuple[str, ...] = ()  # shell commands Codex ran for the model
    tool_calls: int = 0  # commands run and patches applied for the model
    last_message: str | None = None  # the model's last answer, truncated
    retries: int = 0  # "Reconnecting… n/m": requests Codex had to repeat
    tests_run: int | None = None
    tests_passed: bool | None = None
    notes: tuple[str, ...] = ()
    thread_id: str | None = None
    output_tps: float | None = None  # output tokens per second of wall time (Codex reports no server timings)
    cost: float | None = None  # dollars, from --price
    workdir: str | None = None  # the scratch repository, when it is kept

    @property
    def ok(self) -> bool:
        return self.status == PASS

    @property
    def tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


def from_json(data: dict[str, Any]) -> TaskRun:
    """A TaskRun back from a receipt (unknown keys from a newer localcodex are dropped)."""
    known = TaskRun.__dataclass_fields__
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
    return TaskRun(**values)


@dataclass(frozen=True)
class Runner:
    """What every attempt of one run shares."""

    codex: Path
    codex_home: Path
    base_url: str | None = None


def attempt(runner: Runner, *, profile: str, name: str, instruction: str, workdir: Path, base: str,
            checks: Sequence[Check], timeout_s: float, task_class: str = "", repeat: int = 1,
            task_dir: Path | None = None, price: Price | None = None) -> TaskRun:
    """Run Codex on the task in `workdir` (a repository at commit `base`) and grade what it left behind."""
    from localcodex.adapters import codex_cli, scratch_repo

    run = codex_cli.run_exec(instruction, profile=profile, codex_home=runner.codex_home, timeout=timeout_s,
                             extra_args=CODEX_ARGS, cwd=workdir, codex=runner.codex)
    events = codex_cli.parse_exec_events(run.stdout)
    changes = scratch_repo.changes_since(workdir, base)
    status, reason = PASS, None
    if run.timed_out:
        status, reason = TIMEOUT, timeout_reason(timeout_s, events)
    elif run.returncode != 0 or events.turn_failed:
        status, reason = ERROR, codex_failure(run, events, runner.base_url)
    wall = round(run.seconds, 3)
    result = TaskRun(
        name=name, task=instruction, status=status, reason=reason, wall_s=wall,
        exit_code=None if run.timed_out else run.returncode, task_class=task_class, profile=profile, repeat=repeat,
        input_tokens=events.input_tokens, cached_input_tokens=events.cached_input_tokens,
        output_tokens=events.output_tokens, files_changed=changes.paths, diff_stat=changes.stat,
        committed=changes.committed, commands=events.commands, tool_calls=events.tool_calls,
        last_message=truncate(events.last_message), retries=events.retries, thread_id=events.thread_id,
        output_tps=round(events.output_tokens / wall, 2) if events.output_tokens and wall > 0 else None,
        cost=price.cost(events.input_tokens, events.output_tokens) if price else None,
    )
    if status != PASS:
        return result
    verdict = grade(checks, Attempt(workdir, base, events.last_message, changes.paths, changes.committed,
                                    events.tool_calls, task_dir))
    return replace(result, status=PASS if verdict.passed else FAIL, reason=verdict.reason,
                   tests_run=verdict.tests_run, tests_passed=verdict.tests_passed, notes=verdict.notes)


def timeout_reason(timeout: float, events: Any) -> str:
    last = events.errors[-1] if events.errors else None
    tail = f"; Codex's last message: {last}" if last else ""
    return f"no finished answer within {timeout:g} s (Codex was stopped){tail}"


def codex_failure(run: Any, events: Any, base_url: str | None) -> str:
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


def truncate(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1].rstrip() + "…"


def find_codex(explicit: Path | None, what: str) -> Path:
    from localcodex.adapters import codex_cli
    from localcodex.errors import CodexMissing

    codex = explicit or codex_cli.find_codex()
    if codex is None or not Path(codex).exists():
        where = f"{explicit} does not exist" if explicit else "the Codex CLI (`codex`) is not on PATH"
        raise CodexMissing(f"{where}; {what} runs the real Codex", codex_cli.INSTALL_HINT)
    return Path(codex)


def save_session(live: Live, kind: str, runs: Sequence[TaskRun], *, details: dict[str, Any], status: str,
                 models: Sequence[str], endpoint: str | None, settings: dict[str, Any], error: str | None) -> int:
    """A finished `trial` (or any finished run of attempts) as one receipt: its session and a row per attempt."""
    with live.receipts() as store:
        session = store.begin_session(kind, machine_fingerprint(live), endpoint=endpoint,
                                      endpoint_local=is_local(endpoint), api="responses", models=models,
                                      settings=settings, details=details)
        for run in runs:
            store.add_task_run(session, run)
        store.finish_session(session, status, error=error)
    return session


def machine_fingerprint(live: Live) -> Fingerprint:
    """The fingerprint of this machine, recorded with every receipt."""
    from localcodex.core.detect import this_machine

    return fingerprint(this_machine(live.inv.env))


def is_local(url: str | None) -> bool:
    """Receipts record whether the endpoint ran on this machine (loopback), the one the fingerprint describes."""
    return locality(url).on_this_machine if url else True

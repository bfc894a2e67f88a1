"""`localcodex eval`: every task × profile × repeat, each in a fresh scratch repository, kept in the receipts.

Every attempt is saved the moment it finishes (one receipt of kind `eval`, a row per attempt), so Ctrl-C or a
crash keeps what finished; an interrupted run's receipt says `interrupted`. A passing attempt's scratch
repository is deleted; a failing one is kept for inspection (all of them with `keep`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localcodex.core.eval.attempt import ERROR, TIMEOUT, Price, Runner, TaskRun, attempt, find_codex
from localcodex.core.eval.tasks import Task
from localcodex.core.ports import Live
from localcodex.errors import LocalcodexError, UsageError

DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class EvalRequest:
    profiles: tuple[str, ...]
    tasks: tuple[Task, ...]
    repeat: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S
    prices: tuple[tuple[str, Price], ...] = ()  # profile -> price
    codex_home: Path | None = None
    codex: Path | None = None
    workdir: Path | None = None  # default: a fresh temporary folder
    keep: bool = False
    save_receipt: bool = True


@dataclass(frozen=True)
class ProfileInfo:
    name: str
    model: str | None
    provider: str | None
    base_url: str | None
    price: Price | None = None


@dataclass(frozen=True)
class EvalRun:
    """What `eval` did: every finished attempt, in order."""

    profiles: tuple[ProfileInfo, ...]
    tasks: tuple[tuple[str, str], ...]  # (name, class) in run order
    runs: tuple[TaskRun, ...]
    repeat: int
    planned: int  # attempts planned (tasks × profiles × repeat)
    interrupted: bool
    started_at: str
    wall_s: float
    timeout_s: float
    workdir: str
    codex_version: str | None
    receipt_id: int | None = None
    receipt_error: str | None = None


@dataclass(frozen=True)
class EvalEvent:
    kind: str  # "started" | "attempt_started" | "attempt_done" | "receipt"
    message: str
    index: int = 0  # 1-based number of the attempt
    total: int = 0
    elapsed_s: float = 0.0
    remaining_s: float | None = None  # estimate: mean time per finished attempt × attempts left
    run: TaskRun | None = None


Progress = Callable[[EvalEvent], None]


@dataclass
class _Receipt:
    store: Any = None
    session: int | None = None
    error: str | None = None

    def add(self, run: TaskRun) -> None:
        if self.session is None:
            return
        try:
            self.store.add_task_run(self.session, run)
        except LocalcodexError as exc:
            self.error = exc.message


@dataclass
class _State:
    runs: list[TaskRun] = field(default_factory=list)
    interrupted: bool = False


def run_eval(request: EvalRequest, live: Live, on_progress: Progress | None = None) -> EvalRun:
    from localcodex.adapters import codex_cli, codex_config

    notify = on_progress or (lambda _event: None)
    _check(request)
    codex = find_codex(request.codex, "eval")
    info = codex_cli.codex_info(codex)
    codex_home = request.codex_home or live.inv.codex_home
    prices = dict(request.prices)
    profiles = tuple(_profile(codex_config.read_profile(codex_home, name), name, prices.get(name))
                     for name in request.profiles)
    plan = [(task, profile, n) for task in request.tasks for n in range(1, request.repeat + 1) for profile in profiles]
    started_at, clock = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.monotonic()
    root, owned = _workdir(request.workdir)
    receipt = _open_receipt(request, live, profiles) if request.save_receipt else _Receipt()
    state = _State()
    notify(EvalEvent("started", f"{len(plan)} attempt(s): {len(request.tasks)} task(s) × {len(profiles)} "
                     f"profile(s) × {request.repeat}; scratch repositories in {root}", 0, len(plan)))
    try:
        for index, (task, profile, n) in enumerate(plan, 1):
            elapsed = time.monotonic() - clock
            notify(EvalEvent("attempt_started", f"{task.name} × {profile.name} #{n}", index, len(plan), elapsed))
            run = _one(request, Runner(codex, codex_home, profile.base_url), root, task, profile, n)
            state.runs.append(run)
            receipt.add(run)
            elapsed = time.monotonic() - clock
            remaining = elapsed / index * (len(plan) - index)
            notify(EvalEvent("attempt_done", f"{task.name} × {profile.name} #{n}: {run.status}", index, len(plan),
                             elapsed, remaining, run))
    except KeyboardInterrupt:
        state.interrupted = True
    result = EvalRun(
        profiles=profiles, tasks=tuple((t.name, t.task_class) for t in request.tasks), runs=tuple(state.runs),
        repeat=request.repeat, planned=len(plan), interrupted=state.interrupted, started_at=started_at,
        wall_s=round(time.monotonic() - clock, 3), timeout_s=request.timeout_s, workdir=str(root),
        codex_version=info.version_str if info else None, receipt_id=receipt.session, receipt_error=receipt.error,
    )
    _close_receipt(receipt, result)
    if owned and not any(root.iterdir()):
        shutil.rmtree(root, ignore_errors=True)
    if receipt.session is not None:
        notify(EvalEvent("receipt", f"saved as receipt {receipt.session}"))
    elif receipt.error:
        notify(EvalEvent("receipt", f"the eval was not saved to the receipts: {receipt.error}"))
    return result


def _check(request: EvalRequest) -> None:
    if not request.profiles:
        raise UsageError("no profile to evaluate", "pass --profile NAME (as often as you like)")
    if len(set(request.profiles)) != len(request.profiles):
        raise UsageError("a profile is named twice", "name each --profile once")
    if not request.tasks:
        raise UsageError("no task to run", "leave out --task, or name one `localcodex eval --list` shows")
    if request.repeat < 1:
        raise UsageError(f"--repeat {request.repeat}: must be 1 or more", "e.g. --repeat 3")
    if request.timeout_s <= 0:
        raise UsageError(f"--timeout {request.timeout_s:g}: must be more than 0 seconds", "e.g. --timeout 300")
    unknown = [p for p, _ in request.prices if p not in request.profiles]
    if unknown:
        raise UsageError(f"--price for {', '.join(unknown)}, which is not a --profile of this run",
                         "give prices as PROFILE=IN/OUT for the profiles you run")


def _profile(found: Any, name: str, price: Price | None) -> ProfileInfo:
    return ProfileInfo(name, found.model, found.provider, found.base_url, price)


def _workdir(explicit: Path | None) -> tuple[Path, bool]:
    from localcodex.adapters import scratch_repo

    if explicit is None:
        return Path(tempfile.mkdtemp(prefix="localcodex-eval-")), True
    scratch_repo.prepare_dir(explicit)
    return explicit, False


def _one(request: EvalRequest, runner: Runner, root: Path, task: Task, profile: ProfileInfo, n: int) -> TaskRun:
    """One attempt in a fresh scratch repository; a task that cannot be set up is an error, not a crash."""
    from localcodex.adapters import scratch_repo, task_folder
    from localcodex.core.eval.attempt import PASS

    workdir = root / f"{task.name}-{profile.name}-{n}"
    timeout = task.timeout_s or request.timeout_s
    try:
        scratch_repo.prepare_dir(workdir)
        if task.builtin:
            base = scratch_repo.create_from_files(workdir, dict(task.files), f"eval task {task.name}")
        else:
            base = task_folder.make_repo(task_folder.read_task(task.folder), workdir, task.setup) \
                if task.folder else ""
    except LocalcodexError as exc:
        return TaskRun(task.name, task.instruction, ERROR, f"the task's repository could not be made: {exc.message}",
                       0.0, None, task.task_class, profile.name, n, workdir=str(workdir))
    # On Ctrl-C run_exec kills Codex and the KeyboardInterrupt goes on up; the repository stays for inspection.
    run = attempt(runner, profile=profile.name, name=task.name, instruction=task.instruction, workdir=workdir,
                  base=base, checks=task.checks, timeout_s=timeout, task_class=task.task_class, repeat=n,
                  task_dir=task.folder, price=profile.price)
    if run.status == PASS and not request.keep:
        shutil.rmtree(workdir, ignore_errors=True)
        _remove_answer(workdir)
        return run
    return replace(run, workdir=str(workdir))


def _remove_answer(workdir: Path) -> None:
    answer = workdir.parent / f"{workdir.name}.answer.txt"
    if answer.exists():
        answer.unlink()


def _open_receipt(request: EvalRequest, live: Live, profiles: Sequence[ProfileInfo]) -> _Receipt:
    from localcodex.core.eval.attempt import is_local, machine_fingerprint

    store = live.receipts()
    endpoints = list(dict.fromkeys(p.base_url for p in profiles if p.base_url))
    settings = {"profiles": [p.name for p in profiles], "repeat": request.repeat, "timeout_s": request.timeout_s,
                "tasks": [t.name for t in request.tasks],
                "prices": {p: {"input": v.input, "output": v.output} for p, v in request.prices}}
    details = {"profiles": [{"name": p.name, "model": p.model, "provider": p.provider, "base_url": p.base_url}
                            for p in profiles],
               "tasks": [{"name": t.name, "class": t.task_class} for t in request.tasks]}
    try:
        session = store.begin_session(
            "eval", machine_fingerprint(live), endpoint=", ".join(endpoints) or None,
            endpoint_local=all(is_local(e) for e in endpoints), api="responses",
            models=list(dict.fromkeys(p.model for p in profiles if p.model)), settings=settings, details=details)
    except LocalcodexError as exc:
        store.close()
        return _Receipt(error=exc.message)
    return _Receipt(store, session)


def _close_receipt(receipt: _Receipt, result: EvalRun) -> None:
    if receipt.session is None:
        return
    try:
        status = "interrupted" if result.interrupted else "ok"
        error = f"interrupted after {len(result.runs)} of {result.planned} attempts" if result.interrupted else None
        receipt.store.finish_session(receipt.session, status, error=error)
    except LocalcodexError as exc:
        receipt.error = exc.message
    finally:
        receipt.store.close()


def timed_out(run: EvalRun) -> bool:
    return any(r.status == TIMEOUT for r in run.runs)


def parse_price(text: str) -> tuple[str, Price]:
    """`--price PROFILE=IN/OUT`: dollars per million input and output tokens.

    >>> parse_price("glm=0.6/2.2")
    ('glm', Price(input=0.6, output=2.2))
    """
    hint = "e.g. --price glm=0.6/2.2 (dollars per million input/output tokens)"
    profile, sep, rates = text.partition("=")
    inp, slash, out = rates.partition("/")
    try:
        price = Price(float(inp), float(out))
    except ValueError:
        raise UsageError(f"--price {text}: expected PROFILE=IN/OUT", hint) from None
    if not sep or not slash or not profile.strip() or price.input < 0 or price.output < 0:
        raise UsageError(f"--price {text}: expected PROFILE=IN/OUT with prices of 0 or more", hint)
    return profile.strip(), price

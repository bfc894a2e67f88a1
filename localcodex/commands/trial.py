"""`localcodex trial`: run the real Codex with a profile on a scratch project, a read-only task then a small edit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.core.trial import StepResult, TrialEvent, TrialReport
    from localcodex.render.output import Outcome, Output


def register(app: typer.Typer) -> None:
    app.command("trial")(trial_command)


def trial_command(
    profile: Annotated[str, typer.Option("--profile", "-p", help="The Codex profile to try.")] = "local_ollama",
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="S", help="Seconds each step may take before Codex is stopped.")
    ] = 300.0,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the scratch repository even when the trial passes.")
    ] = False,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", metavar="DIR", help="A new or empty folder for the scratch repository "
                     "(default: a temporary folder)."),
    ] = None,
    json_: options.Json = False,
) -> None:
    """Try a Codex profile for real: in a scratch git repository, `codex exec -p PROFILE` must answer a
    read-only task without touching files, then add one test when asked. Saved in the receipts."""
    from localcodex.render.output import run_command

    def body(out: Output) -> TrialReport:
        from localcodex.core.trial import TrialRequest, trial
        from localcodex.wiring import live

        request = TrialRequest(profile=profile, workdir=workdir, step_timeout_s=timeout, keep=keep)
        return trial(request, live(), on_progress=lambda event: _progress(out, event, timeout))

    run_command("trial", json_, body, render, judge)


def _progress(out: Output, event: TrialEvent, timeout: float) -> None:
    if out.json:
        fields: dict[str, Any] = {"message": event.message}
        if event.step is not None:
            fields.update(step=event.step.name, status=event.step.status, wall_s=event.step.wall_s)
        elif event.name:
            fields["step"] = event.name
        out.event(f"trial.{event.kind}", **fields)
        return
    if event.kind == "step_started":
        out.note(f"[bold]{event.name}[/bold]: running codex exec (up to {timeout:g} s)…")
    elif event.kind == "step_done" and event.step is not None:
        took = "" if event.step.status == "skipped" else f" in {event.step.wall_s:.1f} s"
        out.note(f"[bold]{event.step.name}[/bold]: {_status(event.step.status)}{took}")
    elif event.kind == "receipt" and "not saved" in event.message:
        out.warn(event.message)
    else:
        out.note(f"[dim]{_escape(event.message)}[/dim]")


def judge(report: TrialReport) -> Outcome:
    from localcodex.errors import ExitCode
    from localcodex.render.output import ErrorItem, Outcome

    if report.ok:
        return Outcome()
    code = ExitCode.TIMEOUT if report.timed_out else ExitCode.CHECK_FAILED
    return Outcome(code, (ErrorItem("timeout" if report.timed_out else "trial_failed", report.verdict,
                                    _hint(report)),))


def _hint(report: TrialReport) -> str:
    where = f"; the scratch repository is kept in {report.workdir}" if report.kept else ""
    return _fix(report) + where


def _fix(report: TrialReport) -> str:
    """What to do about the first step that did not pass."""
    bad = next(s for s in report.steps if not s.ok and s.status != "skipped")
    if bad.status == "timeout":
        return "a slow model may just need longer (--timeout 900); `localcodex check` shows whether the server answers"
    if bad.status == "error":
        return f"`localcodex check` and `localcodex doctor` test the endpoint the profile `{report.profile}` uses"
    return "this model does not follow Codex's instructions well; `localcodex recommend` lists alternatives"


# --------------------------------------------------------------------------------------------------- rendering

_STYLES = {"pass": "green", "fail": "red", "error": "red", "timeout": "yellow", "skipped": "dim"}


def _status(status: str) -> str:
    return f"[{_STYLES.get(status, 'white')}]{status}[/]"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def render(out: Output, report: TrialReport) -> None:
    from rich.table import Table

    out.out.print(f"[bold]Trial of profile {_escape(report.profile)}[/bold]  "
                  f"{_escape(report.model or 'model unknown')} via {_escape(report.base_url or 'unknown base_url')}"
                  f"  (codex {_escape(report.codex_version or '?')})")
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column, justify in (("step", "left"), ("status", "left"), ("time", "right"), ("tokens", "right"),
                            ("files changed", "left"), ("details", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for step in report.steps:
        table.add_row(step.name, _status(step.status), _seconds(step), _tokens(step),
                      _escape(", ".join(step.files_changed) or "none"), _escape(_details(step)))
    out.out.print(table)
    out.out.print()
    mark = "[green]PASS[/green]" if report.ok else "[red]FAIL[/red]"
    out.out.print(f"{mark}  {_escape(report.verdict)}")
    if not report.ok:
        out.out.print(f"  [dim]fix:[/dim] {_escape(_fix(report))}")
    if report.kept:
        out.out.print(f"scratch repository: {_escape(report.workdir)}")
    if report.receipt_id is not None:
        out.out.print(f"[dim]saved as receipt {report.receipt_id} (`localcodex receipts`)[/dim]")


def _seconds(step: StepResult) -> str:
    return "-" if step.status == "skipped" else f"{step.wall_s:.1f} s"


def _tokens(step: StepResult) -> str:
    return "-" if step.tokens is None else f"{step.tokens:,}"


def _details(step: StepResult) -> str:
    parts = [step.reason] if step.reason else []
    if step.tests_run is not None:
        parts.append(f"{step.tests_run} tests {'pass' if step.tests_passed else 'fail'}")
    if step.retries:
        parts.append(f"{step.retries} retries")
    parts += list(step.notes)
    if step.ok and step.last_message and not parts:
        first = step.last_message.splitlines()[0]
        parts.append(f"answer: {first if len(first) <= 60 else first[:59] + '…'}")
    return "; ".join(parts)

"""`localcodex doctor`: find the usual mistakes in the Codex configuration, the environment and the servers it
points at, and say how to fix each one. Exit code 0 when nothing is an error, 6 (CHECK_FAILED) otherwise."""

from __future__ import annotations

from typing import Annotated

import typer

from localcodex.commands import options

SYMBOLS = {"error": "✗", "warning": "!", "info": "i"}
TITLES = {"error": ("error", "errors"), "warning": ("warning", "warnings"), "info": ("note", "notes")}
STYLES = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor_command)


def doctor_command(
    host: options.Host = None,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Look only at this Codex profile (NAME.config.toml).")
    ] = None,
    no_probes: Annotated[
        bool, typer.Option("--no-probes", help="Offline: look at config files and the environment only.")
    ] = False,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also send real requests (Responses API, tool call, context, chat): slow.")
    ] = False,
    json_: options.Json = False,
) -> None:
    """Find what stops Codex from working with a local model, and how to fix each problem. Changes nothing."""
    from localcodex.output import run_command

    def body(out):
        from localcodex.core.doctor import DoctorRequest, doctor

        request = DoctorRequest(host=host, profile=profile, run_probes=not no_probes, deep=deep)
        return doctor(request, on_progress=lambda step: _progress(out, step))

    run_command("doctor", json_, body, render, judge)


def _progress(out, step) -> None:
    out.event("step", step=step.step, detail=step.detail)
    if out.interactive:
        out.note(f"[dim]looking at {step.step}{': ' + step.detail if step.detail else ''}[/dim]")


def judge(report):
    from localcodex.errors import ExitCode
    from localcodex.output import ErrorItem, Outcome

    if report.ok:
        return Outcome()
    items = tuple(ErrorItem(f"doctor.{f.id}", f.message, f.fix or None) for f in report.errors)
    return Outcome(ExitCode.CHECK_FAILED, items)


def render(out, report) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = out.out
    if not report.findings:
        console.print(f"[green]✓[/green] no problems found{_scope(report)}")
        return
    for severity in ("error", "warning", "info"):
        found = [f for f in report.findings if f.severity == severity]
        if not found:
            continue
        one, many = TITLES[severity]
        style = STYLES[severity]
        console.print(f"[{style}]{SYMBOLS[severity]} {len(found)} {one if len(found) == 1 else many}[/{style}]")
        grid = Table.grid(padding=(0, 1), pad_edge=False)
        grid.add_column(width=3, justify="right")
        grid.add_column()
        for f in found:
            grid.add_row(f"[{style}]{SYMBOLS[severity]}[/{style}]", _entry(f, escape))
        console.print(grid)
        console.print()
    console.print(_summary(report) + _scope(report))


def _entry(f, escape) -> str:
    """One finding: what, where, the fix, and the command that applies it (each on its own line)."""
    lines = [f"{escape(f.message)}  [dim]({f.id})[/dim]"]
    if f.where:
        lines.append(f"[dim]at:[/dim] {escape(f.where)}")
    if f.fix:
        lines.append(f"[dim]fix:[/dim] {escape(f.fix)}")
    if f.fix_command:
        lines.append(f"[dim]run:[/dim] [bold]{escape(f.fix_command)}[/bold]")
    return "\n".join(lines)


def _summary(report) -> str:
    parts = []
    for severity in ("error", "warning", "info"):
        count = sum(1 for f in report.findings if f.severity == severity)
        one, many = TITLES[severity]
        parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts)


def _scope(report) -> str:
    files = sum(1 for f in report.files)
    probes = "; servers probed" if report.probes_run else "; servers not probed (--no-probes)"
    return f" ({files} config file{'s' if files != 1 else ''} examined{probes})"

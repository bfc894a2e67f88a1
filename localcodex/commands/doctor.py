"""`localcodex doctor`: find the usual mistakes in the Codex configuration, the environment and the servers it
points at, and say how to fix each one. Exit code 0 when nothing is an error, 10 (TIMEOUT) when a probe hit its
time limit, 6 (CHECK_FAILED) otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.core.doctor.run import DoctorReport
    from localcodex.render.output import Output

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
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1,
                            help="Time limit of each probe, in seconds (quick ones: at most 15 s).")
    ] = 60.0,
    json_: options.Json = False,
) -> None:
    """Find what stops Codex from working with a local model, and how to fix each problem. Changes nothing."""
    from localcodex.render.output import run_command

    def body(out):
        from localcodex.core.doctor.run import DoctorRequest, doctor
        from localcodex.wiring import live

        adapters = live(host, json=json_)
        request = DoctorRequest(host=host, profile=profile, run_probes=not no_probes, deep=deep,
                                probe_timeout=timeout, env=adapters.inv.env)
        return doctor(request, adapters, on_progress=lambda step: _progress(out, step))

    run_command("doctor", json_, body, render, judge)


def _progress(out, step) -> None:
    out.event("step", step=step.step, detail=step.detail)
    if out.interactive:
        out.note(f"[dim]looking at {step.step}{': ' + step.detail if step.detail else ''}[/dim]")


def judge(report):
    from localcodex.errors import ExitCode
    from localcodex.render.output import ErrorItem, Outcome

    if report.ok:
        return Outcome()
    items = tuple(ErrorItem(f"doctor.{f.id}", f.message, f.fix or None) for f in report.errors)
    late = any(f.id == "probe-timeout" for f in report.errors)  # a probe hit its time limit: exit 10
    return Outcome(ExitCode.TIMEOUT if late else ExitCode.CHECK_FAILED, items)


def render(out: Output, report: DoctorReport) -> None:
    console = out.out
    if not report.findings:
        console.print(f"[green]✓[/green] no problems found{_scope(report)}")
        return
    width = max(60, console.width)
    for severity in ("error", "warning", "info"):
        found = [f for f in report.findings if f.severity == severity]
        if not found:
            continue
        one, many = TITLES[severity]
        style = STYLES[severity]
        console.print(f"[{style}]{SYMBOLS[severity]} {len(found)} {one if len(found) == 1 else many}[/{style}]")
        for f in found:
            _entry(console, f, style, width)
        console.print()
    console.print(_summary(report) + _scope(report))
    from rich.markup import escape

    for f in report.errors:
        if f.id == "probe-timeout":  # exit 10: say which probe hit which limit where scripts look for it
            out.err.print(f"[bold red]error:[/bold red] {escape(f.message)}", soft_wrap=True)


def _entry(console, f, style: str, width: int) -> None:
    """One finding: what, where, the fix, the command; wrapped with a hanging indent, no trailing blanks."""
    from rich.markup import escape

    symbol = SYMBOLS[f.severity]
    paragraphs = f"{f.message}  ({f.id})".split("\n")
    lines = _wrap(f"  {symbol} ", paragraphs[0], width)
    for extra in paragraphs[1:]:
        lines += _wrap("    ", extra, width)
    head = escape(lines[0]).replace(symbol, f"[{style}]{symbol}[/{style}]", 1)
    console.print("\n".join([head, *map(escape, lines[1:])]), soft_wrap=True)
    for label, text in (("at", f.where), ("fix", f.fix), ("run", f.fix_command)):
        if text:
            # A command stays on one line so it can be copied whole.
            wrapped = [f"    {label}: {text}"] if label == "run" else _wrap(f"    {label}: ", text, width)
            first = escape(wrapped[0]).replace(f"{label}:", f"[dim]{label}:[/dim]", 1)
            if label == "run":
                first = first.replace(escape(text), f"[bold]{escape(text)}[/bold]", 1)
            console.print("\n".join([first, *map(escape, wrapped[1:])]), soft_wrap=True)


def _wrap(prefix: str, text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=prefix, subsequent_indent=" " * 6,
                         break_long_words=False, break_on_hyphens=False) or [prefix.rstrip()]


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

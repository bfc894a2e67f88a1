"""`localcodex setup`: detect → recommend → pull → context variant → check → configure → bench, in one go.

The steps are the commands' own core functions (see core/setup.py); this module only asks the questions,
shows the step list as it progresses and prints the final summary.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.core.setup import SetupReport
    from localcodex.render.output import Output


def register(app: typer.Typer) -> None:
    app.command("setup")(setup_command)


def setup_command(
    model: Annotated[
        str | None, typer.Option("--model", metavar="NAME", help="Use this model instead of the recommended one "
                                 "(remembered; `--model auto` goes back to the recommendation).")
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", metavar="TOKENS", help="Context window (default: the largest that "
                                 "fits, up to 65536; remembered; `--context auto` goes back to that).")
    ] = None,
    profile: Annotated[str, typer.Option("--profile", help="Codex profile to write ($CODEX_HOME/NAME.config.toml).")]
    = "local_ollama",
    no_bench: Annotated[bool, typer.Option("--no-bench", help="Skip the tokens-per-second benchmark.")] = False,
    recheck: Annotated[
        bool, typer.Option("--recheck", help="Prove context, endpoint and speed again even if proven before.")
    ] = False,
    launch: Annotated[
        bool, typer.Option("--launch", help="Start Codex with the profile at the end (`codex -p PROFILE`).")
    ] = False,
    vram: options.Vram = None,
    ram: options.Ram = None,
    gpu: options.Gpu = None,
    host: options.Host = None,
    yes: options.Yes = False,
    dry_run: options.DryRun = False,
    json_: options.Json = False,
) -> None:
    """Set everything up: pick a model that fits, pull it, size its context, prove it, write the Codex profile.

    The choices you make here (--model, --context, --vram, --ram, --gpu none) are remembered for the next runs;
    give one again to change it, or `auto` (e.g. `--gpu auto`, `--vram auto`, `--model auto`) to forget it."""
    from localcodex.render.output import run_command

    def body(out):
        from localcodex.core.setup import SetupRequest, setup
        from localcodex.wiring import live

        if launch:
            _can_launch(json_, dry_run)
        overrides = options.parse_overrides(vram, ram, gpu)
        request = SetupRequest(
            host=host, model=None if options.is_auto(model) else model, context=_context(context), profile=profile,
            bench=not no_bench, dry_run=dry_run, recheck=recheck, vram=overrides.vram, ram=overrides.ram,
            gpu_none=overrides.gpu_none, forget=options.forgotten(model=model, context=context, vram=vram, ram=ram,
                                                                  gpu=gpu),
        )  # fmt: skip
        with _hooks(out, yes) as hooks:
            return setup(request, live(host, json=json_), hooks)

    try:
        run_command("setup", json_, body, render, judge)
    except SystemExit as done:
        if launch and done.code == 0:
            from localcodex.adapters.codex_cli import exec_codex, find_codex

            codex = find_codex()
            if codex is not None:
                print(f"starting: codex -p {profile}", flush=True)
                exec_codex(codex, ["-p", profile])
        raise


def _context(text: str | None) -> int | None:
    """`--context 32768`, or `auto` (None: the largest that fits)."""
    from localcodex.errors import UsageError

    if text is None or options.is_auto(text):
        return None
    try:
        tokens = int(text.strip())
    except ValueError:
        raise UsageError(f"--context {text!r} is not a number of tokens", "for example --context 32768, or "
                         "--context auto") from None
    if tokens <= 0:
        raise UsageError(f"--context must be a positive number of tokens, not {text}", "for example --context 32768")
    return tokens


def _can_launch(json_: bool, dry_run: bool) -> None:
    """`--launch` hands this terminal to Codex: refused where that cannot work, before anything is done."""
    from localcodex.adapters.codex_cli import INSTALL_HINT, find_codex
    from localcodex.errors import CodexMissing, UsageError

    if json_ or dry_run:
        other = "--json" if json_ else "--dry-run"
        raise UsageError(f"--launch starts Codex in this terminal: it does not go with {other}", "drop one of them")
    if find_codex() is None:
        raise CodexMissing("--launch needs the Codex CLI, and there is no `codex` on PATH", INSTALL_HINT)


@contextlib.contextmanager
def _hooks(out, yes: bool):
    """Questions, the live step list and the progress displays of the long steps."""
    from localcodex.core.setup import SetupHooks
    from localcodex.render.progress import pull_display

    stack = contextlib.ExitStack()
    spinner: dict = {}

    def running(name: str, title: str) -> None:
        out.event("step", name=name, status="running", title=title)
        if out.interactive and name not in ("pull", "configure"):  # those two may ask first: no live display yet
            spinner["status"] = stack.enter_context(out.err.status(f"{title}…"))

    def pulling(event) -> None:
        """The pull display starts with the first event, after the question was answered."""
        if "pull" not in spinner:
            spinner["pull"] = stack.enter_context(pull_display(out))
        spinner["pull"](event)

    def finished(step) -> None:
        stack.close()
        spinner.clear()
        out.event("step", name=step.name, status=step.status.value, summary=step.summary, seconds=step.seconds)
        out.note(_step_line(step))
        for warning in step.warnings:
            out.warn(warning)

    def probe(event) -> None:
        status = spinner.get("status")
        if status is not None and getattr(event, "title", None):
            status.update(f"Prove the /v1 endpoint: {event.title}…")

    def bench(event) -> None:
        status = spinner.get("status")
        if status is not None and getattr(event, "message", None):
            status.update(f"Measure tokens per second: {event.message}")

    def confirm(question: str) -> bool:
        if not yes and not out.interactive:
            from localcodex.errors import UsageError

            raise UsageError("setup would change this machine (see its plan) and there is no terminal to ask on",
                             "pass --yes to go ahead, or --dry-run to see every step")
        from rich.markup import escape

        return out.confirm(escape(question), default=True, assume_yes=yes)  # a diff has [tables] in it

    hooks = SetupHooks(
        confirm=confirm,
        can_ask=yes or out.interactive,
        on_step=finished, on_running=running, on_probe=probe, on_bench=bench, on_pull=pulling,
    )
    try:
        yield hooks
    finally:
        stack.close()


SYMBOLS = {
    "done": "[green]✓[/green]", "unchanged": "[green]✓[/green]", "skipped": "[dim]–[/dim]",
    "planned": "[cyan]→[/cyan]", "failed": "[red]✗[/red]", "not run": "[dim]·[/dim]",
}


def _step_line(step) -> str:
    from rich.markup import escape

    took = f" [dim]({step.seconds:.1f} s)[/dim]" if step.seconds >= 0.05 else ""
    if step.status.value == "failed":  # the error below says why, once
        return f"{SYMBOLS['failed']} {step.title:<28} failed{took}"
    return f"{SYMBOLS[step.status.value]} {step.title:<28} {escape(step.summary)}{took}"


def judge(report):
    from localcodex.core.setup import exit_code
    from localcodex.render.output import Outcome

    failed = report.failed
    if failed is None:
        return Outcome()
    return Outcome(exit_code(report), (failed.error,) if failed.error else ())


def render(out: Output, report: SetupReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    failed = report.failed
    if failed is not None:
        out.err.print(f"[bold red]error:[/bold red] {escape(failed.title)}: {escape(failed.summary)}", soft_wrap=True)
        if failed.error and failed.error.hint:
            out.err.print(f"  [dim]fix:[/dim] {escape(failed.error.hint)}", soft_wrap=True)
        if failed.retry and failed.error and failed.error.code not in ("usage", "declined", "ollama_unavailable"):
            out.err.print(f"  [dim]retry this step:[/dim] {escape(failed.retry)}", soft_wrap=True)
        if report.plan and failed.error and failed.error.code == "usage":  # not asked: show what would change
            out.err.print("the plan was:", soft_wrap=True, markup=False)
            for line in report.plan:
                out.err.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("model", f"{report.variant}  (base {report.model})" if report.variant else report.model),
        ("runs", report.placement),
        ("context", f"{report.context:,} tokens" if report.context else None),
        ("speed", _speed(report)),
        ("profile", report.profile_path),
    ]
    for key, value in rows:
        if value:
            table.add_row(key, escape(str(value)))
    title = "dry run: nothing was changed" if report.dry_run else "ready"
    out.out.print(f"[bold]localcodex setup: {title}[/bold]")
    out.out.print(table)
    if report.codex_command and not report.dry_run:
        out.out.print(f"Start Codex:  [bold]{escape(report.codex_command)}[/bold]")


def _speed(report) -> str | None:
    if not report.decode_tps:
        return None
    prompt = f", {report.prompt_tps:,.0f} tok/s prompt" if report.prompt_tps else ""
    return f"{report.decode_tps:.1f} tok/s decode{prompt} (measured)"

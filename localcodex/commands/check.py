"""`localcodex check`: prove the endpoint answers what Codex will send (nine probes, each with its fix)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.core.check.run import CheckReport, CheckRequest, Probe, ProbeStarted
    from localcodex.render.output import Outcome, Output

SYMBOLS = {"pass": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red"), "skip": ("–", "dim")}


def register(app: typer.Typer) -> None:
    app.command("check")(check_command)


def check_command(
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model to check (default: the model of the local_ollama Codex profile)."),
    ] = None,
    host: options.Host = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Any OpenAI-compatible base URL, exactly as Codex's base_url "
                     "(llama-server, LM Studio, vLLM, a gateway). Wins over --host."),
    ] = None,
    env_key: Annotated[
        str | None,
        typer.Option("--env-key", help="Environment variable holding the API key, as Codex's env_key "
                     "(sent as a bearer token; never printed)."),
    ] = None,
    min_context: Annotated[
        int, typer.Option("--min-context", min=1, help="Smallest context (tokens) to accept.")
    ] = 16384,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Time limit of each generating probe, in seconds.")
    ] = 60.0,
    json_: options.Json = False,
) -> None:
    """Check that Ollama (or any OpenAI-compatible server) answers what Codex sends: URL, version, model,
    tools, streaming, context, auth. Exit code 0 only when no probe failed."""
    from localcodex.core.check.run import CheckRequest
    from localcodex.invocation import Invocation
    from localcodex.render.output import run_command

    req = CheckRequest(model=model, host=host, base_url=base_url, env_key=env_key, min_context=min_context,
                       timeout=timeout, env=Invocation.build(host, json=json_).env)
    run_command("check", json_, lambda out: _run(out, req), render, judge)


def _run(out: Output, req: CheckRequest) -> CheckReport:
    from localcodex.core.check.run import Probe, check
    from localcodex.domain.urls import CREDENTIAL_FIX, url_credentials
    from localcodex.errors import UsageError

    found = url_credentials(req.base_url) if req.base_url else []
    if found:  # refused as configure refuses it, and never echoed: check's lines quote the URL they probe
        raise UsageError(f"--base-url holds {found[0]}", CREDENTIAL_FIX)

    if out.json:
        def progress(event: Probe | ProbeStarted) -> None:
            if isinstance(event, Probe):
                out.event("probe", name=event.name, status=event.status, duration_s=event.duration_s,
                          detail=event.detail)

        return check(req, progress)
    if not out.interactive:
        return check(req)
    with out.err.status("checking…") as status:
        def live(event: Probe | ProbeStarted) -> None:
            if not isinstance(event, Probe):
                status.update(f"checking: {event.title}…")

        return check(req, live)


def judge(report: CheckReport) -> Outcome:
    from localcodex.errors import ExitCode
    from localcodex.render.output import ErrorItem, Outcome

    if report.ok:
        return Outcome()
    errors = tuple(ErrorItem("check_failed", f"{p.title}: {p.detail}", p.fix) for p in report.failed)
    unreachable = any(p.name == "reachable" for p in report.failed)  # as bench and pull: exit 3
    return Outcome(ExitCode.OLLAMA_UNAVAILABLE if unreachable else ExitCode.CHECK_FAILED, errors)


def render(out: Output, report: CheckReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    where = f"Ollama {report.server_version}" if report.server == "ollama" else report.server
    out.out.print(f"[bold]{escape(report.model)}[/bold] at {escape(report.base_url)} ({escape(where)})")
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(overflow="fold")
    for probe in report.probes:
        symbol, colour = SYMBOLS[probe.status.value]
        duration = "" if probe.status.value == "skip" else f"{probe.duration_s:.2f} s"
        detail = escape(probe.detail)
        if probe.fix and probe.status.value in ("fail", "warn"):
            detail += f"\n[{colour}]fix:[/{colour}] {escape(probe.fix)}"
        table.add_row(f"[{colour}]{symbol}[/{colour}]", probe.title, duration, detail)
    out.out.print(table)
    if report.pace:
        p = report.pace
        rates = ", ".join(f"{what} {p[key]:g} tok/s" for what, key in (("prefill", "prompt_tps"),
                                                                      ("decode", "decode_tps")) if p.get(key))
        out.out.print(f"[dim]server speed ({escape(p['source'])}, one {p['prompt_tokens']}-token request): "
                      f"{rates}; the generation probes' time limits allow for it[/dim]")
    _summary(out, report)


def _summary(out: Output, report: CheckReport) -> None:
    from rich.markup import escape

    c = report.counts
    parts = [f"{c['pass']} passed"]
    parts += [f"{c[k]} {word}" for k, word in (("warn", "warned"), ("fail", "failed"), ("skip", "skipped")) if c[k]]
    verdict = "[green]Codex can use this endpoint.[/green]" if report.ok else \
        "[red]Codex will not work with this endpoint until the failures are fixed.[/red]"
    out.out.print(f"{', '.join(parts)} in {report.duration_s:.1f} s. {verdict}")
    if report.suggested_base_url:
        out.out.print(f'Codex provider: base_url = "{escape(report.suggested_base_url)}"')

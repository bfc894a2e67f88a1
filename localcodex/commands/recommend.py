"""`localcodex recommend`: the model to run with Codex on this machine, why, and the alternatives.

Detects the machine (with detect's overrides), reads what Ollama already has installed (live `/api/show`
beats the catalog), and ranks the catalog. When Ollama cannot be reached it still answers, from the
catalog alone, with a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.core.recommend.fit import MemoryNeed
    from localcodex.core.recommend.rank import Candidate, Recommendation
    from localcodex.render.output import Outcome, Output

Context = Annotated[
    int | None,
    typer.Option("--context", metavar="TOKENS", help="Target context in tokens (default 65536; at least 16384)."),
]
All = Annotated[bool, typer.Option("--all", help="List every catalog model, with the reason it is not offered.")]
NoTools = Annotated[
    bool, typer.Option("--include-no-tools", help="Also list models without tool calling (never recommended).")
]
Model = Annotated[
    str | None, typer.Option("--model", metavar="NAME", help="Evaluate one model: the full memory breakdown.")
]
Prefer = Annotated[
    str,
    typer.Option("--prefer", metavar="speed|quality|balanced",
                 help="Trade-off: the fastest usable model, the strongest that still runs (>= 2 tok/s), or both."),
]  # fmt: skip
TABLE_ROWS = 12


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_command)


def recommend_command(
    context: Context = None,
    all_: All = False,
    include_no_tools: NoTools = False,
    model: Model = None,
    vram: options.Vram = None,
    ram: options.Ram = None,
    gpu: options.Gpu = None,
    host: options.Host = None,
    prefer: Prefer = "balanced",
    json_: options.Json = False,
) -> None:
    """Recommend the best Ollama model for Codex on this machine, with a context that fits."""
    from localcodex.render.output import run_command

    def body(out):
        return _run(out, context, all_, include_no_tools, model, vram, ram, gpu, host, prefer)

    run_command("recommend", json_, body, render, judge)


def _run(out, context, all_, include_no_tools, model, vram, ram, gpu, host, prefer="balanced"):
    from localcodex.core.detect import detect
    from localcodex.core.recommend.rank import recommend_here
    from localcodex.core.recommend.verdict import PREFERENCES
    from localcodex.errors import UsageError
    from localcodex.wiring import live as wire

    if prefer not in PREFERENCES:
        raise UsageError(f"--prefer {prefer!r} is not one of {', '.join(PREFERENCES)}", "use speed|quality|balanced")
    live = wire(host)
    machine = detect(overrides=options.parse_overrides(vram, ram, gpu), ollama_host=live.inv.host, env=live.inv.env)
    result = recommend_here(
        machine, live, context=context, model=model, include_all=all_, include_no_tools=include_no_tools,
        prefer=prefer,
    )
    for warning in result.warnings:
        out.warn(warning)
    return result


# -- rendering ------------------------------------------------------------------------------------------


def judge(result: Recommendation) -> Outcome:
    from localcodex.errors import ExitCode
    from localcodex.render.output import ErrorItem, Outcome

    if result.pick is not None:
        return Outcome()
    if result.candidates and len(result.candidates) == 1:
        reason = result.candidates[0].excluded or "it is not offered"
        message = f"{result.candidates[0].model} cannot be recommended here: {reason}"
    else:
        message = f"no model with tool calling fits this machine at {result.minimum_context:,} tokens of context"
    hint = "see `localcodex recommend --all` for every model and why; free memory or disk, or use --context"
    return Outcome(ExitCode.NO_FIT, (ErrorItem("no_fit", message, hint),))


def render(out: Output, result: Recommendation) -> None:
    if result.evaluated:
        _render_pick(out, result)
        if result.candidates and result.candidates[0].need is not None:
            _render_breakdown(out, result.candidates[0], result.candidates[0].need)
        _render_footer(out, result)
        return
    _render_verdict(out, result)
    _render_pick(out, result)
    _render_table(out, result)
    _render_alternatives(out, result)
    _render_footer(out, result)


def _render_verdict(out: Output, result: Recommendation) -> None:
    from rich.markup import escape

    if result.verdict:
        style = "bold green" if result.usable else "bold red"
        out.out.print(f"[{style}]{escape(result.verdict)}[/{style}]")


def _render_alternatives(out: Output, result: Recommendation) -> None:
    from rich.markup import escape

    if result.usable or not result.alternatives:
        return
    out.out.print("[bold]Instead:[/bold]")
    for alt in result.alternatives:
        out.out.print(f"  • {escape(alt.summary)}: [cyan]{escape(alt.command)}[/cyan]")


def _render_pick(out: Output, result: Recommendation) -> None:
    from rich.markup import escape

    pick = result.pick
    if result.evaluated:
        pick = result.candidates[0] if result.candidates else None
        if pick is not None and pick.offered:
            verdict = "[green]can be recommended[/green]" if pick.usable else "[yellow]fits, but slow here[/yellow]"
        else:
            verdict = "[red]not recommended[/red]"
        out.out.print(f"[bold]{escape(pick.model if pick else result.evaluated)}[/bold] on this machine: {verdict}")
    elif pick is None:
        out.out.print("[bold red]No model to recommend[/bold red] on this machine.")
        return
    else:
        label = "[bold green]Pick:[/bold green]" if result.usable else "[bold yellow]Best local option:[/bold yellow]"
        title = f"{label} [bold]{escape(pick.model)}[/bold]"
        out.out.print(f"{title}  ({_ctx(pick.num_ctx)} context)")
    if pick is None:
        return
    for line in pick.why:
        out.out.print(f"  • {escape(line)}")
    for note in pick.notes:
        out.out.print(f"  [dim]note: {escape(note)}[/dim]")


def _render_table(out: Output, result: Recommendation) -> None:
    from rich.table import Table

    from localcodex.render.output import human_bytes

    table = Table(title=f"Ranked for Codex (target {result.target_context:,} tokens)", title_justify="left")
    for column, justify in (("#", "right"), ("model", "left"), ("size", "right"), ("fits where", "left"),
                            ("context", "right"), ("tok/s", "right"), ("why", "left")):  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    listed_all = any(not c.offered for c in result.candidates)  # --all / --include-no-tools: every row asked for
    shown = list(result.candidates) if listed_all or len(result.candidates) <= TABLE_ROWS else _trim(result.candidates)
    for c in shown:
        table.add_row(
            str(c.rank) if c.rank else "-", c.model + (" *" if c.installed else ""),
            human_bytes(c.size, decimal=True), _where(c), _ctx(c.num_ctx), _tps(c), _short_why(c),
        )  # fmt: skip
    out.out.print(table)
    hidden = len(result.candidates) - len(shown)
    if hidden > 0:
        out.out.print(f"[dim]{hidden} more: --all lists every model[/dim]")
    out.out.print("[dim]* installed. tok/s: est. = estimate from memory bandwidth, measured = bench receipt[/dim]")


def _trim(candidates):
    offered = [c for c in candidates if c.offered]
    return offered[:TABLE_ROWS] if offered else list(candidates[:TABLE_ROWS])


def _where(c) -> str:
    labels = {"unified": "unified memory", "gpu": "GPU", "multi_gpu": "GPUs (split)", "cpu": "CPU",
              "none": "does not fit"}  # fmt: skip
    if c.placement == "partial":
        return f"partial {c.gpu_fraction:.0%} GPU (slow)"
    if c.placement == "gpu" and c.fit is not None:
        return c.fit.parts[0].device.upper()
    return labels.get(c.placement, c.placement)


def _ctx(num_ctx) -> str:
    return f"{num_ctx:,}" if num_ctx else "-"


def _tps(c) -> str:
    if c.decode_tps is None:
        return "-"
    label = {"measured": "measured", "assumed": "assumed"}.get(c.tps_basis, "est.")
    return f"{label} {c.decode_tps:.0f}"


def _short_why(c) -> str:
    if c.excluded:
        return c.excluded
    parts = [f"tier {c.coding_tier}" if c.coding_tier else "unrated"]
    if not c.meets_target and c.num_ctx:
        parts.append(f"{c.target_context:,} does not fit")
    if c.installed:
        parts.append("installed")
    if not c.usable and c.placement != "none":
        parts.append("slow")
    return ", ".join(parts)


def _render_breakdown(out: Output, c: Candidate, need: MemoryNeed) -> None:
    from rich.table import Table

    from localcodex.render.output import human_bytes

    table = Table(title=f"Memory for {c.model} at {need.num_ctx:,} tokens", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    per_token = need.kv_cache / need.num_ctx / need.parallel if need.num_ctx else 0
    rows = [
        ("weights", need.weights, "the GGUF download (projector included)"),
        ("KV cache", need.kv_cache,
         f"{need.kv_cache_type}, {need.parallel} slot(s), ~{per_token / 1024:.0f} KiB/token"),
        ("compute buffer", need.compute, f"batch {need.batch}: 4 B x batch x (vocab + 4 x embedding)"),
    ]
    for label, value, why in rows:
        table.add_row(label, human_bytes(value), why)
    for part in c.fit.parts if c.fit else ():
        table.add_row(f"on {part.device}", human_bytes(part.bytes), f"of {human_bytes(part.budget)} budget "
                      f"({part.share:.0%} of the layers, reserve included)")
    table.add_row("Ollama's estimate", human_bytes(need.ollama_preflight), "file size + its KV formula (no compute)")
    out.out.print(table)
    if c.speed is not None and c.speed.decode_tps is not None:
        s = c.speed
        out.out.print(f"decode: {s.bytes_per_token / 1e9:.2f} GB read per token at {s.context_tokens:,} tokens "
                      f"in context; ceiling {s.ceiling_tps:.0f} tok/s, {s.basis} {s.decode_tps:.0f} tok/s")
        for source in s.sources:
            out.out.print(f"  [dim]{source}[/dim]")


def _render_footer(out: Output, result: Recommendation) -> None:
    from rich.markup import escape

    out.out.print(f"[dim]budget: {escape(result.budget)}[/dim]")
    if result.free_now and result.free_now != result.budget:
        out.out.print(f"[dim]free right now: {escape(result.free_now)}[/dim]")
    if result.today:
        style = "dim" if result.fits_now else "yellow"
        out.out.print(f"[{style}]today: {escape(result.today)}[/{style}]")
    out.out.print(f"[dim]catalog of {result.catalog_updated}; Ollama {escape(result.ollama)}[/dim]")
    for note in result.notes:
        out.out.print(f"[dim]{escape(note)}[/dim]")

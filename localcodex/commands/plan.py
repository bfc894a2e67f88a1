"""`localcodex plan MODEL|FILE.gguf`: memory at a set of contexts, where it would run and how fast, before any
download; on this machine or on one described with `--vram/--ram/--gpu NAME`."""

from __future__ import annotations

from typing import Annotated

import typer

from localcodex.commands import options

Target = Annotated[
    str | None,
    typer.Argument(metavar="MODEL|FILE.gguf", help="A catalog or registry tag (qwen3.5:27b), or a GGUF file."),
]
GpuName = Annotated[
    str | None,
    typer.Option("--gpu", metavar="NAME|none",
                 help="Plan for this GPU or Apple chip (`--gpus` lists them), or `none` for the CPU alone."),
]  # fmt: skip
Gpus = Annotated[bool, typer.Option("--gpus", help="List the GPUs and Apple chips plan knows (memory, bandwidth).")]


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)


def plan_command(
    target: Target = None,
    vram: options.Vram = None,
    ram: options.Ram = None,
    gpu: GpuName = None,
    gpus: Gpus = False,
    host: options.Host = None,
    json_: options.Json = False,
) -> None:
    """What a model would need and how fast it would run here (or on described hardware), before download."""
    from localcodex.render.output import run_command

    if gpus:
        run_command("plan", json_, lambda out: _table(), _render_table)
    run_command("plan", json_, lambda out: _run(out, target, vram, ram, gpu, host), render)


def _table():
    from localcodex.core.recommend.chips import hardware_table

    return {"hardware": [{"name": n, "memory_gib": m, "bandwidth_gbs": b, "source": s}
                         for n, m, b, s in hardware_table()]}  # fmt: skip


def _run(out, target, vram, ram, gpu, host):
    from localcodex.core.detect import detect
    from localcodex.core.recommend.fit import Settings
    from localcodex.core.recommend.plan import described_machine, plan
    from localcodex.core.recommend.rank import ram_bandwidth_here
    from localcodex.domain.units import parse_size
    from localcodex.errors import UsageError
    from localcodex.wiring import live as wire

    live = wire(host)

    if not target:
        raise UsageError("plan needs a MODEL or FILE.gguf", "for example: localcodex plan qwen3.5:27b --gpu 'RTX 4090'")
    named = gpu is not None and gpu.strip().lower() not in ("none", "auto")
    overrides = options.parse_overrides(None if named else vram, ram, None if named else gpu)
    machine = detect(overrides=overrides, ollama_host=live.inv.host, env=live.inv.env, query_ollama=False)
    if named:
        try:
            vram_b = parse_size(vram) if vram else None
            ram_b = parse_size(ram) if ram else None
        except ValueError as exc:
            raise UsageError(f"--vram/--ram: {exc}", "for example --vram 24GiB") from None
        machine = described_machine(machine, gpu, vram_b, ram_b)
    settings = Settings.from_env(live.inv.env, None)
    return plan(target, machine, settings=settings, ram_bandwidth=ram_bandwidth_here(machine, live))


def render(out, result) -> None:
    from rich.markup import escape
    from rich.table import Table

    from localcodex.render.output import human_bytes

    params = f"{result.params_total / 1e9:.1f}B"
    if result.params_active and result.params_active < result.params_total:
        params += f" ({result.params_active / 1e9:.1f}B active)"
    out.out.print(f"[bold]{escape(result.model)}[/bold]: {escape(result.architecture)}, {params}, "
                  f"{escape(result.quantization)}, {human_bytes(result.size, decimal=True)}, "
                  f"trained context {result.context_length:,}")  # fmt: skip
    out.out.print(f"[dim]from: {escape(result.source.kind)}: {escape(result.source.detail)}[/dim]")
    out.out.print(f"on: {escape(result.machine)}")
    table = Table(title_justify="left")
    for column in ("context", "weights", "KV cache", "compute", "total", "runs", "prompt tok/s", "decode tok/s"):
        table.add_column(column, justify="left" if column == "runs" else "right")
    for r in result.rows:
        runs = r.where or r.placement
        if r.placement == "partial":
            runs = f"partial: {r.gpu_fraction:.0%} on GPU"
        table.add_row(
            f"{r.num_ctx:,}", human_bytes(r.need.weights), human_bytes(r.need.kv_cache), human_bytes(r.need.compute),
            human_bytes(r.total) if r.placement != "none" else "-", escape(runs),
            f"~{r.prompt_tps:,.0f}" if r.prompt_tps else "-", f"~{r.decode_tps:.1f}" if r.decode_tps else "-",
        )  # fmt: skip
    out.out.print(table)
    for note in result.notes:
        out.out.print(f"  • {escape(note)}")
    out.out.print(f"[dim]budget: {escape(result.budget)}[/dim]")
    out.out.print("[dim]speeds are estimates from memory bandwidth and compute (core/recommend/speed.py)[/dim]")


def _render_table(out, result) -> None:
    from rich.table import Table

    table = Table(title="GPUs and Apple chips plan knows", title_justify="left")
    for column in ("name", "memory", "bandwidth", "source"):
        table.add_column(column)
    for row in result["hardware"]:
        memory = f"{row['memory_gib']:g} GiB" if row["memory_gib"] else "-"
        table.add_row(row["name"], memory, f"{row['bandwidth_gbs']:g} GB/s", row["source"])
    out.out.print(table)

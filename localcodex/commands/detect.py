"""`localcodex detect`: what this machine can give a model (CPU, RAM, each GPU, disk, Ollama, the budget)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.domain.machine import GPU, Machine
    from localcodex.render.output import Output


def register(app: typer.Typer) -> None:
    app.command("detect")(detect_command)


def detect_command(
    vram: options.Vram = None,
    ram: options.Ram = None,
    gpu: options.Gpu = None,
    host: options.Host = None,
    json_: options.Json = False,
) -> None:
    """Measure what this machine can give a model: CPU, RAM, each GPU, disk, Ollama, and the memory budget."""
    from localcodex.render.output import run_command

    def body(out: Output) -> Machine:
        from localcodex.core.detect import detect
        from localcodex.invocation import Invocation

        inv = Invocation.build(host, json=json_)
        return detect(ollama_host=inv.host, env=inv.env, overrides=options.parse_overrides(vram, ram, gpu))

    run_command("detect", json_, body, render)


# --------------------------------------------------------------------------------------------------- rendering


def render(out: Output, m: Machine) -> None:
    from rich.markup import escape
    from rich.table import Table

    from localcodex.render.output import human_bytes as hb

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in _rows(m):
        table.add_row(key, escape(value))
    out.out.print(table)

    budget = m.budget
    if budget is not None:
        out.out.print()
        out.out.print("[bold]Budget[/bold] (what a model may use here)")
        used = [g for g in m.gpus if g.used_by_ollama]
        lines = [(f"GPU {g.index}", hb(b)) for g, b in zip(used, budget.gpu, strict=False)]
        lines.append(
            ("RAM", hb(budget.ram) + ("  (the same memory as the GPU's: never add them)" if budget.unified else ""))
        )
        t = Table(show_header=False, box=None, pad_edge=False)
        t.add_column(style="bold", no_wrap=True)
        t.add_column()
        for key, value in lines:
            t.add_row(key, escape(value))
        out.out.print(t)
        out.out.print(_bullets([f"[dim]{escape(line)}[/dim]" for line in budget.details]))
    if m.overrides:
        out.out.print()
        out.out.print("[bold]Overrides[/bold] " + escape(", ".join(m.overrides)))
    if m.notes:
        out.out.print()
        out.out.print("[bold]Notes[/bold]")
        out.out.print(_bullets([escape(note) for note in m.notes]))


def _bullets(lines: list[str]):
    """A list with a hanging indent, so wrapped lines stay under their bullet."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for line in lines:
        grid.add_row(" -", line)
    return grid


def _rows(m: Machine) -> list[tuple[str, str]]:
    from localcodex.render.output import human_bytes as hb

    if m.remote:
        rows = [("Machine", "remote Ollama host: its hardware cannot be measured from here")]
        if m.ram_total:
            rows.append(("RAM", f"{hb(m.ram_total)}  [override]"))
        rows += [(f"GPU {g.index}", _gpu_line(g)) for g in m.gpus]
        rows.append(("Ollama", _ollama_line(m)))
        return rows
    where = [m.os_version or m.os, m.arch]
    if m.wsl:
        where.append("(WSL)")
    if m.container:
        where.append(f"(container: {m.container_kind or 'yes'})")
    cores = []
    if m.cores_physical:
        cores.append(f"{m.cores_physical} cores")
    if m.cores_logical and m.cores_logical != m.cores_physical:
        cores.append(f"{m.cores_logical} threads")
    cpu = ", ".join(filter(None, [m.cpu_model or "unknown", " / ".join(cores), " ".join(s.upper() for s in m.simd)]))
    ram = f"{hb(m.ram_total)} total, {hb(m.ram_available)} available"
    if m.swap_total:
        ram += f", swap {hb(m.swap_total)}"
    if m.cgroup_limit:
        ram += f"; container limit {hb(m.cgroup_limit)} ({hb(m.cgroup_used)} used)"
    if any(o.startswith("ram=") for o in m.overrides):
        ram += "  [override]"
    rows = [("System", " ".join(where)), ("CPU", cpu), ("RAM", ram)]
    rows += [(f"GPU {g.index}", _gpu_line(g)) for g in m.gpus] or [("GPU", "none found")]
    if m.disk is not None:
        disk = f"{hb(m.disk.free)} free of {hb(m.disk.total)}" if m.disk.total else "unknown"
        rows.append(("Disk", f"{disk}  ({m.disk.path})"))
    rows.append(("Ollama", _ollama_line(m)))
    return rows


def _gpu_line(g: GPU) -> str:
    from localcodex.render.output import human_bytes as hb

    parts = [g.name]
    if g.memory_total is not None:
        memory = f"{hb(g.memory_total)}" + (f", {hb(g.memory_free)} free" if g.memory_free is not None else "")
        parts.append(memory + (" (shared with RAM)" if g.unified_memory else ""))
    else:
        parts.append("memory unknown")
    backend = g.backend.upper() if g.backend != "unknown" else "backend unknown"
    parts.append(" ".join(filter(None, [backend, g.compute, f"driver {g.driver}" if g.driver else None])))
    if g.integrated:
        parts.append("integrated")
    parts.append("used by Ollama" if g.used_by_ollama else "not used by Ollama")
    line = " — ".join(parts)
    return line + "  [override]" if g.source == "override" else line


def _ollama_line(m: Machine) -> str:
    from localcodex.render.output import human_bytes as hb

    state = m.ollama
    if state is None:
        return "not asked"
    if not state.reachable:
        return state.error or f"not reachable at {state.host}"
    line = f"{state.version or '?'} at {state.host}"
    if state.loaded:
        held = ", ".join(
            f"{x.name} {hb(x.size)} ({round(100 * x.size_vram / x.size) if x.size else 0}% GPU)" for x in state.loaded
        )
        line += f"; loaded: {held}"
    else:
        line += "; no model loaded"
    if state.error:
        line += f"; {state.error}"
    return line

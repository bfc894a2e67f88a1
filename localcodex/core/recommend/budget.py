"""A budget that does not move with free memory: what to download should not depend on this second.

`detect`'s budget (`Machine.budget`) starts from what is free *now*: another program that allocates 8 GiB
for a minute changes it, and with it the pick. `recommend` instead decides what fits from what the machine
has for good:

    RAM       min(total, container limit) - system reserve
              reserve = 1.5 GiB + 10 % of that memory on a host (the OS, a desktop, Codex itself, an editor);
              0.5 GiB + 10 % inside a container limit (the limit already leaves the host outside)
    GPU       total - memory held by processes other than Ollama - Ollama's per-GPU minimum - OLLAMA_GPU_OVERHEAD
              others = total - free - what Ollama's loaded models hold on it (a desktop, a game, another
              runtime); Ollama's own loaded models are not subtracted: it unloads them to make room
    unified   min(Metal working set or GPU total, RAM as above) - Ollama's minimum - OLLAMA_GPU_OVERHEAD

What is free right now is still measured (detect's budget) and reported beside the pick: whether the pick
would load today, or how much would have to be closed first.
"""

from __future__ import annotations

from dataclasses import dataclass

from localcodex.core.recommend.fit import BACKEND_MINIMUM, DEFAULT_BACKEND_MINIMUM, GiB, MiB, usable_gpus
from localcodex.domain.machine import Budget, Machine

SYSTEM_RESERVE_FIXED = 1536 * MiB
SYSTEM_RESERVE_FRACTION = 0.10
CONTAINER_RESERVE_FIXED = 512 * MiB


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def system_reserve(machine: Machine) -> tuple[int, int, str]:
    """(base memory, reserve, words) for RAM: total (or the container limit) and what the system keeps."""
    limit = machine.cgroup_limit
    limited = limit is not None and limit < (machine.ram_total or limit + 1)
    base = machine.cgroup_limit if limited and machine.cgroup_limit else machine.ram_total
    fixed = CONTAINER_RESERVE_FIXED if limited else SYSTEM_RESERVE_FIXED
    reserve = fixed + int(SYSTEM_RESERVE_FRACTION * base)
    where = "container limit" if limited else "RAM total"
    return base, reserve, f"{_gib(base)} {where} − {_gib(reserve)} system reserve ({_gib(fixed)} + 10 %)"


def stable_budget(machine: Machine, gpu_overhead: int = 0) -> Budget:
    """The budget from installed memory (see the module docstring); detect's budget when nothing is known."""
    if not machine.ram_total and not machine.gpus:
        return machine.budget or Budget((), 0, "memory unknown (pass --vram/--ram)")
    base, reserve, ram_text = system_reserve(machine)
    ram = max(0, base - reserve)
    details = []
    loaded = machine.ollama.loaded if machine.ollama else ()
    loaded_vram = sum(m.size_vram for m in loaded)
    gpus = usable_gpus(machine)
    known = sum(g.memory_total or 0 for g in gpus)
    budgets = []
    for g in gpus:
        minimum = BACKEND_MINIMUM.get(g.backend, DEFAULT_BACKEND_MINIMUM)
        label = f"GPU {g.index} {g.name}"
        if not g.memory_total:
            budgets.append(0)
            details.append(f"{label}: memory unknown, counted as 0 (pass --vram)")
            continue
        if g.unified_memory:
            start = min(g.memory_total, ram)
            text = f"{label}: min({_gib(g.memory_total)} GPU working set, RAM {_gib(ram)}) − {_gib(minimum)} Ollama"
        else:
            ours = loaded_vram * g.memory_total // known if known else 0
            others = max(0, g.memory_total - g.memory_free - ours) if g.memory_free is not None else 0
            start = g.memory_total - others
            held = f"{_gib(others)} held by other programs"
            text = f"{label}: {_gib(g.memory_total)} total − {held} − {_gib(minimum)} Ollama"
        budget = max(0, start - minimum - gpu_overhead)
        if gpu_overhead:
            text += f" − {_gib(gpu_overhead)} OLLAMA_GPU_OVERHEAD"
        budgets.append(budget)
        details.append(f"{text} = {_gib(budget)}")
    details.append(f"RAM: {ram_text} = {_gib(ram)}")
    unified = any(g.unified_memory for g in gpus)
    explanation = "stable (installed memory, not what is free this second): " + "; ".join(details)
    return Budget(tuple(budgets), ram, explanation, unified=unified, details=tuple(details))


@dataclass(frozen=True)
class FreeNow:
    """What is free right now (detect's budget) and what it means for the pick today."""

    explanation: str
    fits_now: bool | None  # None: no pick, or nothing measured
    summary: str


def free_now(machine: Machine, pick_parts: tuple[tuple[str, int], ...] | None) -> FreeNow:
    """Compare the pick's per-device need with what is free now. `pick_parts`: (device, bytes) pairs."""
    now = machine.budget
    if now is None:
        return FreeNow("not measured", None, "")
    if not pick_parts:
        return FreeNow(now.explanation, None, "")
    short = []
    for device, need in pick_parts:
        have = now.ram if device == "cpu" else (now.gpu[int(device[3:])] if int(device[3:]) < len(now.gpu) else 0)
        if need > have:
            short.append(f"{device}: needs {_gib(need)}, {_gib(have)} free now")
    if not short:
        return FreeNow(now.explanation, True, "it would load right now with what is free")
    return FreeNow(
        now.explanation, False,
        "today it would not load without freeing memory first (" + "; ".join(short) + "): close other "
        "programs or unload models (`ollama stop`), the pick itself does not change",
    )  # fmt: skip

"""`detect`: what this machine can give a model, as a `Machine` with a `Budget`.

The probes (localcodex/adapters/probes) read the facts; this module puts them together, applies the user's
overrides, and derives the budget with `compute_budget`, a pure function of the `Machine`.

The budget rule:

* Per GPU that Ollama would use:
  `min(free, total − loaded) − reserve − OLLAMA_GPU_OVERHEAD`, where
  - `free` is what the driver reports free now (nvidia-smi/NVML, amdgpu sysfs); a GPU with no free figure
    (Apple, Windows registry) starts from its total;
  - `loaded` is the VRAM that models already loaded in Ollama hold (`/api/ps` size_vram; split across GPUs
    in proportion to their size, since /api/ps does not say which GPU). It is a `min`, not a subtraction
    from `free`: memory a loaded model holds is already missing from `free`, and subtracting it twice would
    hide a model that fits;
  - `reserve` is Ollama's per-GPU minimum, 457 MiB for CUDA/ROCm/Vulkan and 512 MiB for Metal;
  - a GPU sharing system RAM (Apple Silicon, an APU, GB10) is further capped by the RAM available, and its
    budget is *the same memory* as the RAM budget (`Budget.unified`): never add the two.
  - Apple's `total` is Metal's working set (`iogpu.wired_limit_mb`, else 2/3 of RAM up to 32 GiB and 3/4
    above; see adapters/probes/apple.py for the measurements behind the fractions).
* RAM: `available − margin − loaded on CPU`, where `available` is MemAvailable (or what a container's
  cgroup limit leaves, when smaller), `margin` is 1 GiB + 10 % of the RAM (or of the cgroup limit) for the
  OS, the Codex CLI and everything else that grows, and `loaded on CPU` is `size − size_vram` of the loaded
  models (subtracted in full: when those weights are memory-mapped, MemAvailable still counts them).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from localcodex.adapters.probes import amd, apple, cpu, disk, drm, environment, memory, nvidia, windows
from localcodex.adapters.probes.base import Runner, SystemInfo, current_system, default_runner
from localcodex.adapters.probes.native import Native
from localcodex.domain.machine import GPU, Budget, Machine, OllamaState
from localcodex.domain.units import GiB, MiB, format_bytes
from localcodex.errors import UsageError
from localcodex.paths import OllamaHost
from localcodex.paths import ollama_host as _host_of

EMPTY_ENV: Mapping[str, str] = MappingProxyType({})
DEFAULT_HOST = _host_of(None, EMPTY_ENV)  # Ollama's default address (127.0.0.1:11434)

RESERVE_GPU = 457 * MiB  # Ollama's MinimumMemory() for CUDA/ROCm (and Vulkan)
RESERVE_METAL = 512 * MiB  # ... and for Metal
RAM_MARGIN_FIXED = 1 * GiB
RAM_MARGIN_FRACTION = 0.10


@dataclass(frozen=True)
class Overrides:
    """What the user tells detect when it cannot know: `--vram`, `--ram`, `--gpu none`."""

    vram: int | None = None  # bytes per GPU Ollama would use (a GPU is assumed when none was found)
    ram: int | None = None  # bytes of system RAM
    gpu_none: bool = False  # run on the CPU: no GPU counts

    def labels(self) -> tuple[str, ...]:
        out = []
        if self.vram is not None:
            out.append(f"vram={format_bytes(self.vram)} per GPU (--vram)")
        if self.ram is not None:
            out.append(f"ram={format_bytes(self.ram)} (--ram)")
        if self.gpu_none:
            out.append("gpu=none (--gpu none)")
        return tuple(out)


def detect(
    *,
    root: Path = Path("/"),
    run: Runner = default_runner,
    env: Mapping[str, str] = EMPTY_ENV,
    system: SystemInfo | None = None,
    overrides: Overrides = Overrides(),
    ollama_host: OllamaHost | None = None,
    query_ollama: bool = True,
    native: Native | None = None,
    ollama_timeout: float = 2.0,
) -> Machine:
    """Measure the machine (or, for a remote Ollama host, say what cannot be measured) and its budget.

    `env` is the invocation's environment (GPU visibility and Ollama's own variables are read from it, never
    from the process); `ollama_host` the parsed server (default: Ollama's default address).
    """
    if overrides.gpu_none and overrides.vram is not None:
        raise UsageError("--vram and --gpu none contradict each other", "pass one of them")
    system = system or current_system()
    native = native or Native()
    host = ollama_host or DEFAULT_HOST
    state = _ollama(host, ollama_timeout) if query_ollama else None
    local = _is_local(host)
    machine = _local(root, run, env, system, native, overrides) if local else _remote(host, overrides)
    machine = replace(machine, ollama=state, overrides=overrides.labels())
    machine = _apply_gpu_overrides(machine, overrides)
    overhead, overhead_note = gpu_overhead(env)
    notes = machine.notes + ((overhead_note,) if overhead_note else ())
    if state is not None and not state.reachable:
        notes += (f"Ollama: {state.error}; models already loaded (if any) are not subtracted",)
    machine = replace(machine, notes=notes)
    return replace(machine, budget=compute_budget(machine, gpu_overhead=overhead))


def _ollama(host: OllamaHost, timeout: float) -> OllamaState:
    from localcodex.adapters.probes.ollama_state import probe_ollama

    return probe_ollama(host, timeout)


def _is_local(host: OllamaHost) -> bool:
    if host.is_local:
        return True
    import urllib.parse

    name = (urllib.parse.urlsplit(host.native).hostname or "").lower()
    return name in {socket.gethostname().lower(), socket.gethostname().lower().split(".")[0]}


def gpu_overhead(env: Mapping[str, str]) -> tuple[int, str | None]:
    """`OLLAMA_GPU_OVERHEAD` (bytes per GPU), as this shell sees it.

    >>> gpu_overhead({"OLLAMA_GPU_OVERHEAD": "1073741824"})[0]
    1073741824
    >>> gpu_overhead({"OLLAMA_GPU_OVERHEAD": "lots"})
    (0, "OLLAMA_GPU_OVERHEAD='lots' is not a number of bytes; ignored (Ollama ignores it too)")
    """
    raw = env.get("OLLAMA_GPU_OVERHEAD", "").strip().strip('"').strip("'")
    if not raw:
        return 0, None
    if not raw.isdigit():
        return 0, f"OLLAMA_GPU_OVERHEAD={raw!r} is not a number of bytes; ignored (Ollama ignores it too)"
    return int(raw), (
        f"OLLAMA_GPU_OVERHEAD={format_bytes(int(raw))} per GPU, read from this shell "
        "(the Ollama server's own environment may differ)"
    )


def _local(
    root: Path, run: Runner, env: Mapping[str, str], system: SystemInfo, native: Native, overrides: Overrides
) -> Machine:
    notes: list[str] = []
    where = environment.probe_environment(root, env)
    sysctl = apple.read_sysctl(run, notes) if system.os == "darwin" else {}
    mem = memory.probe_memory(root, run, system, native, sysctl)
    notes += mem.notes
    cgroup = memory.probe_cgroup(root, mem.total) if system.os == "linux" else memory.CgroupInfo()
    notes += cgroup.notes
    ram_total, ram_available = mem.total, mem.available
    if overrides.ram is not None:
        ram_total = overrides.ram
        ram_available = overrides.ram if ram_available is None else min(ram_available, overrides.ram)
    shared = nvidia.SharedMemory(ram_total, effective_ram_available(ram_available, cgroup.limit, cgroup.used))
    cpu_info = cpu.probe_cpu(root, run, system, native, sysctl)
    notes += cpu_info.notes
    gpus = _gpus(root, run, env, system, where.wsl, native, shared, sysctl, notes, cpu_info.model)
    disk_info = disk.probe_disk(root, env, system.os, native, notes)
    if where.wsl == 2:
        notes.append("WSL2: RAM is what the WSL virtual machine was given (see .wslconfig), not all of Windows'")
    elif where.wsl == 1:
        notes.append("WSL1: no GPU access; Ollama runs on the CPU here")
    if where.container:
        notes.append(
            f"inside a container ({where.container}): the figures are this container's"
            + (f", limited to {format_bytes(cgroup.limit)} by its cgroup" if cgroup.limit else "")
        )
    if ram_total is None:
        notes.append("RAM total unknown: pass --ram")
    notes += _visible_devices(env)
    arch = "arm64" if sysctl.get("sysctl.proc_translated") == "1" else system.arch  # Rosetta hides the real arch
    return Machine(
        os=system.os,
        arch=arch,
        cpu_model=cpu_info.model,
        cores_physical=cpu_info.cores_physical,
        cores_logical=cpu_info.cores_logical,
        simd=cpu_info.simd,
        ram_total=ram_total or 0,
        ram_available=ram_available or 0,
        swap_total=mem.swap_total,
        swap_free=mem.swap_free,
        cgroup_limit=cgroup.limit,
        cgroup_used=cgroup.used,
        wsl=where.wsl is not None,
        container=where.container is not None,
        container_kind=where.container,
        os_version=environment.os_version(root, system.os, sysctl, system.release),
        gpus=tuple(replace(g, index=i) for i, g in enumerate(gpus)),
        disk=disk_info,
        notes=tuple(dict.fromkeys(notes)),
    )


def _visible_devices(env: Mapping[str, str]) -> list[str]:
    """GPU masks in this shell. Ollama obeys them in *its* environment, which may not be this one."""
    names = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")
    return [
        f"{name}={env[name]!r} is set here: if the Ollama server runs with it, it sees only those GPUs"
        for name in names
        if name in env
    ]


def _gpus(
    root: Path,
    run: Runner,
    env: Mapping[str, str],
    system: SystemInfo,
    wsl: int | None,
    native: Native,
    shared: nvidia.SharedMemory,
    sysctl: dict[str, str],
    notes: list[str],
    cpu_model: str | None,
) -> list[GPU]:
    if system.os == "darwin":
        return apple.probe_apple_gpu(sysctl, system.arch, shared.total, shared.available)
    cards = drm.list_cards(root, notes) if system.os == "linux" else []
    gpus = nvidia.probe_nvidia(root, run, system, wsl, native, cards, shared, notes)
    if system.os == "windows":
        return gpus + windows.probe_windows_gpus(run, env, {g.name for g in gpus}, len(gpus), notes)
    unnamed = [c for c in cards if c.vendor in ("amd", "intel") and not (c.device / "product_name").exists()]
    names = drm.lspci_names(run) if unnamed else {}
    gpus += amd.probe_amd(root, run, cards, env, shared, names, notes, len(gpus), amd.apu_name_from_cpu(cpu_model))
    gpus += amd.probe_intel(root, cards, env, names, len(gpus))
    return gpus


def _remote(host: OllamaHost, overrides: Overrides) -> Machine:
    """A remote Ollama host: this machine's probes would describe the wrong computer, so report nothing
    local. Only /api/ps (memory held by loaded models, and how much of it is in VRAM) speaks for the server."""
    ram = overrides.ram or 0
    return Machine(
        os="unknown",
        arch="unknown",
        cpu_model=None,
        cores_physical=None,
        cores_logical=None,
        simd=(),
        ram_total=ram,
        ram_available=ram,
        remote=True,
        notes=(
            f"remote Ollama host {host.native}: its CPU, RAM, GPUs and disk cannot be measured from here; "
            "only /api/ps (memory held by loaded models) comes from the server. Describe it with --vram and --ram "
            "(or run `localcodex detect` on that machine)",
        ),
    )


def _apply_gpu_overrides(machine: Machine, overrides: Overrides) -> Machine:
    gpus = list(machine.gpus)
    if overrides.gpu_none:
        gpus = [replace(g, used_by_ollama=False, notes=(*g.notes, "not counted: --gpu none")) for g in gpus]
    elif overrides.vram is not None:
        used = [g for g in gpus if g.used_by_ollama]
        if used:
            gpus = [
                replace(g, memory_total=overrides.vram, memory_free=overrides.vram, source="override",
                        notes=(*g.notes, f"memory set to {format_bytes(overrides.vram)} by --vram"))
                if g.used_by_ollama else g
                for g in gpus
            ]  # fmt: skip
        else:
            gpus.append(
                GPU(
                    index=len(gpus),
                    vendor="other",
                    name="GPU given by --vram",
                    memory_total=overrides.vram,
                    memory_free=overrides.vram,
                    backend="unknown",
                    source="override",
                    notes=("not detected; described by --vram",),
                )
            )
    return replace(machine, gpus=tuple(gpus))


def effective_ram_available(available: int | None, cgroup_limit: int | None, cgroup_used: int | None) -> int | None:
    """MemAvailable, or what the container's cgroup limit leaves when that is smaller.

    >>> effective_ram_available(20 * GiB, 4 * GiB, 1 * GiB) // GiB
    3
    >>> effective_ram_available(20 * GiB, None, None) // GiB
    20
    """
    if cgroup_limit is None:
        return available
    left = max(0, cgroup_limit - (cgroup_used or 0))
    return left if available is None else min(available, left)


def compute_budget(machine: Machine, *, gpu_overhead: int = 0) -> Budget:
    """The bytes a model may use, per GPU Ollama would use and in RAM, with the derivation in words.

    Pure: everything comes from `machine` (its GPUs, RAM, cgroup and the models Ollama has loaded).
    """
    loaded = machine.ollama.loaded if machine.ollama else ()
    loaded_vram = sum(m.size_vram for m in loaded)
    loaded_cpu = sum(max(0, m.size - m.size_vram) for m in loaded)
    if machine.remote and machine.ram_total == 0 and not machine.gpus:
        held = (
            f"{len(loaded)} loaded model(s) hold {format_bytes(loaded_vram + loaded_cpu)}"
            if loaded
            else "no model loaded"
        )
        text = (
            f"remote Ollama host: its memory cannot be measured from here ({held} per /api/ps); "
            "describe it with --vram and --ram"
        )
        return Budget(gpu=(), ram=0, explanation=text, details=(text,))

    ram_available = effective_ram_available(machine.ram_available, machine.cgroup_limit, machine.cgroup_used) or 0
    details: list[str] = []
    used = [g for g in machine.gpus if g.used_by_ollama]
    known = sum(g.memory_total for g in used if g.memory_total)
    budgets: list[int] = []
    for g in used:
        budget, line = _gpu_budget(g, loaded_vram, known, ram_available, gpu_overhead)
        budgets.append(budget)
        details.append(line)
    if not used:
        details.append("no GPU Ollama would use: models run on the CPU, from RAM")

    ram_budget, ram_line = _ram_budget(machine, ram_available, loaded_cpu)
    details.append(ram_line)
    unified = any(g.unified_memory for g in used)
    if unified:
        details.append("unified memory: the GPU and RAM budgets are the same memory, never add them")
    return Budget(
        gpu=tuple(budgets), ram=ram_budget, explanation="; ".join(details), unified=unified, details=tuple(details)
    )


def _gpu_budget(g: GPU, loaded_vram: int, known_total: int, ram_available: int, overhead: int) -> tuple[int, str]:
    label = f"GPU {g.index} {g.name}"
    if not g.memory_total:
        return 0, f"{label}: memory unknown, counted as 0 (pass --vram)"
    share = loaded_vram * g.memory_total // known_total if known_total else 0
    candidates = []
    if g.memory_free is not None:
        candidates.append((g.memory_free, f"{format_bytes(g.memory_free)} free"))
    base_name = "Metal working set" if g.backend == "metal" else "total"
    if share:
        candidates.append(
            (
                g.memory_total - share,
                f"{format_bytes(g.memory_total)} {base_name} − {format_bytes(share)} held by loaded models",
            )
        )
    elif g.memory_free is None:
        candidates.append((g.memory_total, f"{format_bytes(g.memory_total)} {base_name} (free not reported)"))
    if g.unified_memory and all(value != ram_available for value, _ in candidates):
        candidates.append((ram_available, f"{format_bytes(ram_available)} RAM available"))
    start = min(value for value, _ in candidates)
    start_text = candidates[0][1] if len(candidates) == 1 else "min(" + ", ".join(t for _, t in candidates) + ")"
    reserve = RESERVE_METAL if g.backend == "metal" else RESERVE_GPU
    budget = max(0, start - reserve - overhead)
    text = f"{label}: {start_text} − {format_bytes(reserve)} Ollama reserve"
    if overhead:
        text += f" − {format_bytes(overhead)} OLLAMA_GPU_OVERHEAD"
    return budget, f"{text} = {format_bytes(budget)}"


def _ram_budget(machine: Machine, ram_available: int, loaded_cpu: int) -> tuple[int, str]:
    limited = machine.cgroup_limit is not None and machine.cgroup_limit < (
        machine.ram_total or machine.cgroup_limit + 1
    )
    base = machine.cgroup_limit if limited and machine.cgroup_limit else machine.ram_total
    margin = RAM_MARGIN_FIXED + int(RAM_MARGIN_FRACTION * base)
    budget = max(0, ram_available - margin - loaded_cpu)
    if limited:
        start = f"{format_bytes(ram_available)} left under the {format_bytes(machine.cgroup_limit)} container limit"
    else:
        start = f"{format_bytes(ram_available)} available"
    text = f"RAM: {start} − {format_bytes(margin)} margin (1 GiB + 10 % of {format_bytes(base)})"
    if loaded_cpu:
        text += f" − {format_bytes(loaded_cpu)} loaded models hold on the CPU"
    if not machine.ram_total:
        text = "RAM: unknown, counted as 0 (pass --ram)"
    return budget, f"{text} = {format_bytes(budget)}" if machine.ram_total else text


def this_machine(env: Mapping[str, str] = EMPTY_ENV) -> Machine:
    """The machine we run on, as `detect` sees it (GPUs included), without asking Ollama anything.

    Always this machine's own hardware: a benchmark of a server elsewhere is recorded with it too, and marked
    as remote in the receipts, so it never passes for a measurement of this hardware.
    """
    return detect(query_ollama=False, env=env)

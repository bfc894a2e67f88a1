"""AMD GPUs on Linux: amdgpu's sysfs files, the KFD topology (for the gfx target), `rocm-smi` as a fallback.

An APU (Ryzen AI Max "Strix Halo", Radeon 780M, ...) has a small BIOS carve-out as VRAM and reaches the rest
of system RAM through GTT. Ollama's rule (fact sheet 4.4): a device is integrated when VRAM <= 4 GiB,
GTT >= 8 GiB and GTT >= 4 x VRAM; integrated GPUs are dropped unless `OLLAMA_IGPU_ENABLE=1`, except the
gfx1151 (Strix Halo), which Ollama keeps. For such a GPU the usable memory is the carve-out plus GTT, never
more than the RAM that is actually free, and it is the same memory as system RAM.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from localcodex.adapters.probes.base import Runner, parse_int, read_int, read_text, under
from localcodex.adapters.probes.drm import DrmCard
from localcodex.adapters.probes.nvidia import SharedMemory
from localcodex.domain.machine import GPU
from localcodex.domain.units import GiB

# gfx targets Ollama's ROCm build ships kernels for (others run through Vulkan, on by default since v0.30).
ROCM_TARGETS = frozenset(
    {
        "gfx900", "gfx906", "gfx908", "gfx90a", "gfx940", "gfx941", "gfx942", "gfx1010", "gfx1012", "gfx1030",
        "gfx1100", "gfx1101", "gfx1102", "gfx1151", "gfx1200", "gfx1201",
    }
)  # fmt: skip
KEPT_INTEGRATED = frozenset({"gfx1151"})  # Ryzen AI Max+ (Strix Halo): used by default though integrated
APU_TARGETS = frozenset({"gfx90c", "gfx1035", "gfx1036", "gfx1037", "gfx1103", "gfx1150", "gfx1151", "gfx1152"})


@dataclass(frozen=True)
class KfdNode:
    gfx: str | None
    slot: str | None
    render_minor: int | None


def gfx_name(target_version: int) -> str | None:
    """KFD's `gfx_target_version` as the gfx name: major, then minor and stepping as one hex digit each.

    >>> gfx_name(110501), gfx_name(110000), gfx_name(90010), gfx_name(100300), gfx_name(0)
    ('gfx1151', 'gfx1100', 'gfx90a', 'gfx1030', None)
    """
    if target_version <= 0:
        return None
    major, minor, step = target_version // 10000, (target_version // 100) % 100, target_version % 100
    return f"gfx{major}{minor:x}{step:x}"


def kfd_nodes(root: Path, notes: list[str]) -> list[KfdNode]:
    base = under(root, "/sys/class/kfd/kfd/topology/nodes")
    try:
        folders = sorted(base.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 1 << 30)
    except OSError:
        return []
    nodes = []
    for folder in folders:
        props: dict[str, int] = {}
        for line in (read_text(folder / "properties", notes) or "").splitlines():
            key, _, value = line.partition(" ")
            number = parse_int(value)
            if number is not None:
                props[key] = number
        if props.get("simd_count", 0) <= 0:  # CPU nodes
            continue
        loc, domain = props.get("location_id"), props.get("domain", 0)
        slot = f"{domain:04x}:{(loc >> 8) & 0xFF:02x}:{(loc >> 3) & 0x1F:02x}.{loc & 7}" if loc is not None else None
        nodes.append(KfdNode(gfx_name(props.get("gfx_target_version", 0)), slot, props.get("drm_render_minor")))
    return nodes


def probe_amd(
    root: Path,
    run: Runner,
    cards: list[DrmCard],
    env: Mapping[str, str],
    shared: SharedMemory,
    names: dict[str, str],
    notes: list[str],
    first_index: int,
    apu_name: str | None = None,
) -> list[GPU]:
    """`apu_name` is the GPU named in the CPU's model string ("AMD RYZEN AI MAX+ 395 w/ Radeon 8060S"):
    a better name for the integrated GPU than the PCI database's codename ("Phoenix1", "Strix Halo")."""
    amd = [c for c in cards if c.vendor == "amd"]
    if not amd:
        return []
    nodes = kfd_nodes(root, notes)
    gpus: list[GPU] = []
    smi: dict[str, dict[str, str]] | None = None
    for position, card in enumerate(amd):
        node = next((n for n in nodes if n.slot and n.slot == card.slot), None)
        if node is None and len(nodes) == len(amd):  # no PCI location in the topology: same order
            node = nodes[position]
        mem = _sysfs_memory(card.device, notes)
        name = (read_text(card.device / "product_name") or "").strip() or None
        source = "sysfs"
        if mem.vram_total is None:
            smi = _rocm_smi(run, notes) if smi is None else smi
            row = list(smi.values())[position] if position < len(smi) else {}
            mem = _smi_memory(row) or mem
            name = name or row.get("Card Series") or row.get("Card series")
            node = node or KfdNode(row.get("GFX Version"), card.slot, None)
            source = "rocm-smi" if row else source
        gfx = node.gfx if node else None
        if apu_name and not name and (gfx in APU_TARGETS or _is_igpu(mem)):
            name = apu_name
        name = name or names.get(card.slot or "") or f"AMD GPU (PCI 1002:{card.device_id or 0:04x})"
        gpus.append(_gpu(first_index + len(gpus), card, name, node.gfx if node else None, mem, shared, env, source))
    return gpus


@dataclass(frozen=True)
class _Memory:
    vram_total: int | None = None
    vram_used: int | None = None
    gtt_total: int | None = None
    gtt_used: int | None = None


def _sysfs_memory(device: Path, notes: list[str]) -> _Memory:
    return _Memory(
        *(read_int(device / f"mem_info_{k}", notes) for k in ("vram_total", "vram_used", "gtt_total", "gtt_used"))
    )


def _rocm_smi(run: Runner, notes: list[str]) -> dict[str, dict[str, str]]:
    result = run(["rocm-smi", "--showmeminfo", "vram", "--showproductname", "--json"], 10.0)
    if result is None:
        notes.append("AMD GPU memory unknown: sysfs has no mem_info files and rocm-smi is not installed")
        return {}
    try:
        doc = json.loads(result.stdout)
    except ValueError:
        notes.append(f"rocm-smi gave no JSON (exit {result.returncode})")
        return {}
    return {k: v for k, v in doc.items() if k.startswith("card") and isinstance(v, dict)}


def _smi_memory(row: dict[str, str]) -> _Memory | None:
    total = parse_int(row.get("VRAM Total Memory (B)", ""))
    if total is None:
        return None
    return _Memory(total, parse_int(row.get("VRAM Total Used Memory (B)", "")))


def _gpu(
    index: int,
    card: DrmCard,
    name: str,
    gfx: str | None,
    mem: _Memory,
    shared: SharedMemory,
    env: Mapping[str, str],
    source: str,
) -> GPU:
    notes: list[str] = []
    vram_free = mem.vram_total - mem.vram_used if mem.vram_total is not None and mem.vram_used is not None else None
    igpu = _is_igpu(mem)
    total, free = mem.vram_total, vram_free
    if igpu:
        assert mem.gtt_total is not None and mem.vram_total is not None  # _is_igpu checked both
        gtt_free = mem.gtt_total - (mem.gtt_used or 0)
        gtt_cap = mem.gtt_total if shared.total is None else min(mem.gtt_total, shared.total)
        gtt_avail = gtt_free if shared.available is None else min(gtt_free, shared.available)
        total = mem.vram_total + gtt_cap
        free = (vram_free or 0) + gtt_avail
        notes.append(
            f"APU: {mem.vram_total // 2**20} MiB carved-out VRAM + {mem.gtt_total / GiB:.0f} GiB GTT "
            "(system RAM the GPU can map); counted up to the RAM that is free"
        )
    # Ollama's sysfs rule above, or an APU's gfx target (its Vulkan device reports `uma`): integrated either way
    integrated = igpu or (gfx in APU_TARGETS)
    used = True
    if integrated and gfx not in KEPT_INTEGRATED and not _truthy(env.get("OLLAMA_IGPU_ENABLE")):
        used = False
        notes.append("integrated GPU: Ollama does not use it unless OLLAMA_IGPU_ENABLE=1")
    elif integrated and not igpu:
        notes.append("APU with a large carve-out: its VRAM is separate from the RAM the system sees")
    if card.driver and card.driver != "amdgpu":
        used = False
        notes.append(f"driver {card.driver!r}: Ollama needs amdgpu (ROCm or Vulkan)")
    backend = "rocm" if gfx in ROCM_TARGETS else "vulkan"
    if gfx and gfx not in ROCM_TARGETS:
        notes.append(f"{gfx} is not in Ollama's ROCm build; it runs through Vulkan")
    if env.get("HSA_OVERRIDE_GFX_VERSION"):
        notes.append(f"HSA_OVERRIDE_GFX_VERSION={env['HSA_OVERRIDE_GFX_VERSION']} is set")
    return GPU(
        index=index,
        vendor="amd",
        name=name,
        memory_total=total,
        memory_free=free,
        backend=backend,
        integrated=integrated,
        unified_memory=igpu,
        used_by_ollama=used,
        driver=card.driver,
        compute=gfx,
        source=source,
        notes=tuple(notes),
        pci_bus=card.slot,
    )


def _is_igpu(mem: _Memory) -> bool:
    """Ollama's rule for an integrated AMD GPU: VRAM <= 4 GiB, GTT >= 8 GiB and GTT >= 4 x VRAM."""
    return (
        mem.vram_total is not None
        and mem.gtt_total is not None
        and mem.vram_total <= 4 * GiB
        and mem.gtt_total >= 8 * GiB
        and mem.gtt_total >= 4 * mem.vram_total
    )


def apu_name_from_cpu(cpu_model: str | None) -> str | None:
    """
    >>> apu_name_from_cpu("AMD RYZEN AI MAX+ 395 w/ Radeon 8060S")
    'AMD Radeon 8060S'
    >>> apu_name_from_cpu("AMD Ryzen 7 7840U w/ Radeon  780M Graphics")
    'AMD Radeon 780M Graphics'
    >>> apu_name_from_cpu("AMD Ryzen 7 7800X3D 8-Core Processor") is None
    True
    """
    m = re.search(r"\bw/\s*(Radeon.*)$", cpu_model or "")
    return "AMD " + " ".join(m.group(1).split()) if m else None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def probe_intel(
    root: Path, cards: list[DrmCard], env: Mapping[str, str], names: dict[str, str], first_index: int
) -> list[GPU]:
    """Intel GPUs from sysfs, named by lspci. Ollama reaches them only through Vulkan; the integrated ones
    (always at PCI 00:02.0) share system RAM and are not used unless OLLAMA_IGPU_ENABLE=1."""
    gpus: list[GPU] = []
    for card in (c for c in cards if c.vendor == "intel"):
        integrated = (card.slot or "").endswith("00:02.0")
        notes = ["Intel GPU (sysfs and lspci): Ollama reaches Intel GPUs only through Vulkan"]
        total = None
        if integrated:
            notes.append("integrated GPU: Ollama does not use it unless OLLAMA_IGPU_ENABLE=1")
        else:
            for attr in ("tile0/vram0/physical_vram_size_bytes", "lmem_total_bytes"):
                total = read_int(card.device / attr)
                if total:
                    break
            else:
                notes.append("its memory size is not exposed in sysfs: pass --vram to give it")
        gpus.append(
            GPU(
                index=first_index + len(gpus),
                vendor="intel",
                name=names.get(card.slot or "") or f"Intel GPU (PCI 8086:{card.device_id or 0:04x})",
                memory_total=total,
                memory_free=None,
                backend="vulkan",
                integrated=integrated,
                unified_memory=integrated,
                used_by_ollama=not integrated or _truthy(env.get("OLLAMA_IGPU_ENABLE")),
                driver=card.driver,
                source="sysfs",
                notes=tuple(notes),
                pci_bus=card.slot,
            )
        )
    return gpus

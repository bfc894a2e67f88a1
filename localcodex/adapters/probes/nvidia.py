"""NVIDIA GPUs: NVML through `nvidia-ml-py` when it loads, else `nvidia-smi --query-gpu ... --format=csv`.

Under WSL2 the driver lives in Windows and `nvidia-smi` in `/usr/lib/wsl/lib`, which is not always on PATH
(the classic "no GPU under WSL2" bug): that path is tried too. Unified-memory parts (DGX Spark's GB10, Jetson)
report no memory of their own (`[N/A]`): their memory is system RAM, and they are marked so.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from localcodex.adapters.probes.base import Runner, SystemInfo, describe_failure, under
from localcodex.adapters.probes.drm import DrmCard, normalize_bus_id
from localcodex.adapters.probes.native import Native, NvmlDevice
from localcodex.domain.machine import GPU
from localcodex.domain.units import MiB

SMI_FIELDS = "index,name,memory.total,memory.free,driver_version,compute_cap,pci.bus_id"
SMI_FIELDS_OLD = "index,name,memory.total,memory.free,driver_version,pci.bus_id"  # drivers before compute_cap
WSL_SMI = "/usr/lib/wsl/lib/nvidia-smi"
# Boards whose GPU shares system memory (CUDA integrated): Ollama keeps these even though they are iGPUs.
_UNIFIED_NAMES = re.compile(r"GB10|Jetson|Orin|Xavier|Thor|Tegra|nvgpu", re.I)
_MIN_COMPUTE = (5, 0)  # Ollama's CUDA builds start at Maxwell


@dataclass(frozen=True)
class SharedMemory:
    """System RAM, for GPUs that have no memory of their own."""

    total: int | None
    available: int | None


def smi_command(fields: str = SMI_FIELDS, exe: str = "nvidia-smi") -> list[str]:
    return [exe, f"--query-gpu={fields}", "--format=csv,noheader,nounits"]


def probe_nvidia(
    root: Path,
    run: Runner,
    system: SystemInfo,
    wsl: int | None,
    native: Native,
    cards: list[DrmCard],
    shared: SharedMemory,
    notes: list[str],
) -> list[GPU]:
    driver_present = _driver_evidence(root, system, wsl, cards)
    gpus: list[GPU] = []
    if driver_present:
        report = native.nvml()
        if report is not None and report.devices:
            gpus = [_from_nvml(d, shared) for d in report.devices]
        elif report is not None and report.error:
            notes.append(f"NVML: {report.error}; asking nvidia-smi instead")
    if not gpus:
        gpus = _from_smi(run, wsl, shared, notes, driver_present and system.os != "windows")
    matched = {g.pci_bus for g in gpus if g.pci_bus}
    for card in cards:
        if card.vendor == "nvidia" and card.slot not in matched and not (gpus and card.slot is None):
            gpus.append(_unanswered(card, len(gpus)))
            notes.append(
                f"NVIDIA GPU at {card.slot} is present but its driver did not report it "
                "(is the NVIDIA driver installed and loaded? `nvidia-smi` should list it)"
            )
    return gpus


def _driver_evidence(root: Path, system: SystemInfo, wsl: int | None, cards: list[DrmCard]) -> bool:
    """Linux: a loaded NVIDIA driver (or WSL2's), or an NVIDIA device in sysfs. On Windows NVML is always
    worth a try (nvml.dll ships with the driver) but a missing nvidia-smi says nothing: the registry covers it."""
    if system.os == "windows":
        return True
    paths = ["/proc/driver/nvidia/version", "/dev/nvidiactl"]
    if wsl == 2:
        paths.append("/usr/lib/wsl/lib/libnvidia-ml.so.1")
    return any(under(root, p).exists() for p in paths) or any(c.vendor == "nvidia" for c in cards)


def _from_smi(run: Runner, wsl: int | None, shared: SharedMemory, notes: list[str], expected: bool) -> list[GPU]:
    exes = ["nvidia-smi"] + ([WSL_SMI] if wsl == 2 else [])
    for exe in exes:
        result = run(smi_command(SMI_FIELDS, exe), 10.0)
        if result is None:
            continue
        if result.returncode != 0 and "compute_cap" in (result.stdout + result.stderr):
            result = run(smi_command(SMI_FIELDS_OLD, exe), 10.0) or result
        if result.returncode != 0:
            notes.append(describe_failure(exe, result))
            return []
        return parse_smi(result.stdout, shared, notes, source=exe.rsplit("/", 1)[-1])
    if expected:
        notes.append(
            "an NVIDIA driver is present but nvidia-smi was not found"
            + (f" (also tried {WSL_SMI})" if wsl == 2 else "")
        )
    return []


def parse_smi(text: str, shared: SharedMemory, notes: list[str], source: str = "nvidia-smi") -> list[GPU]:
    """Rows of `--format=csv,noheader,nounits` (memory in MiB; `[N/A]` where a value is not available).

    >>> gpu, = parse_smi("0, NVIDIA GeForce RTX 4090, 24564, 23884, 560.35.03, 8.9, 00000000:01:00.0\\n",
    ...                  SharedMemory(None, None), [])
    >>> gpu.name, gpu.memory_total // MiB, gpu.memory_free // MiB, gpu.compute, gpu.pci_bus
    ('NVIDIA GeForce RTX 4090', 24564, 23884, '8.9', '0000:01:00.0')
    """
    gpus: list[GPU] = []
    for row in csv.reader(text.splitlines(), skipinitialspace=True):
        if not row or not row[0].strip():
            continue
        if len(row) not in (6, 7):
            notes.append(f"nvidia-smi: unexpected line {','.join(row)[:80]!r}")
            continue
        index, name, total, free, driver = (c.strip() for c in row[:5])
        compute = row[5].strip() if len(row) == 7 else None
        bus = row[-1].strip()
        device = NvmlDevice(
            index=int(index) if index.isdigit() else len(gpus),
            name=name,
            memory_total=_mib(total),
            memory_free=_mib(free),
            driver=_value(driver),
            compute=_value(compute) if compute is not None else None,
            pci_bus=bus,
        )
        gpus.append(_from_nvml(device, shared, source=source))
    return gpus


def _mib(text: str) -> int | None:
    return int(float(text)) * MiB if re.fullmatch(r"\d+(\.\d+)?", text.strip()) else None


def _value(text: str | None) -> str | None:
    if (
        text is None
        or not text.strip()
        or text.strip().strip("[]").lower() in ("n/a", "not supported", "unknown error")
    ):
        return None
    return text.strip()


def _from_nvml(d: NvmlDevice, shared: SharedMemory, source: str = "nvml") -> GPU:
    notes: list[str] = []
    total, free = d.memory_total, d.memory_free
    unified = total is None or bool(_UNIFIED_NAMES.search(d.name))
    if unified:
        notes.append("unified memory: this GPU uses system RAM; its memory is shown as the RAM total and available")
        if total is None:
            total, free = shared.total, shared.available
        elif shared.available is not None:
            free = shared.available if free is None else min(free, shared.available)
    used = True
    if d.compute:
        major, _, minor = d.compute.partition(".")
        if major.isdigit() and (int(major), int(minor or 0)) < _MIN_COMPUTE:
            used = False
            notes.append(f"compute capability {d.compute} is older than Ollama's CUDA builds support (5.0)")
    return GPU(
        index=d.index,
        vendor="nvidia",
        name=d.name,
        memory_total=total,
        memory_free=free,
        backend="cuda",
        integrated=unified,
        unified_memory=unified,
        used_by_ollama=used,
        driver=d.driver,
        compute=d.compute,
        source=source,
        notes=tuple(notes),
        pci_bus=normalize_bus_id(d.pci_bus),
    )


def _unanswered(card: DrmCard, index: int) -> GPU:
    return GPU(
        index=index,
        vendor="nvidia",
        name=f"NVIDIA GPU (PCI 10de:{card.device_id or 0:04x})",
        memory_total=None,
        memory_free=None,
        backend="unknown",
        used_by_ollama=False,
        source="sysfs",
        notes=("found in sysfs, but no NVIDIA driver answered",),
        pci_bus=card.slot,
    )

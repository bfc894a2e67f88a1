"""CPU model, core counts and the SIMD flags that matter for CPU inference (llama.cpp's fast paths)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from localcodex.adapters.probes.base import Runner, SystemInfo, read_text, under
from localcodex.adapters.probes.native import Native

# /proc/cpuinfo flag (x86 "flags", arm "Features") -> the name localcodex reports
_X86_FLAGS = {
    "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c", "avx512f": "avx512",
    "avx512_vnni": "avx512_vnni", "avx512_bf16": "avx512_bf16", "avx_vnni": "avx_vnni", "amx_tile": "amx",
}  # fmt: skip
_ARM_FLAGS = {
    "asimd": "neon", "asimddp": "dotprod", "i8mm": "i8mm", "sve": "sve", "sve2": "sve2", "bf16": "bf16",
    "asimdhp": "fp16",
}  # fmt: skip

# A handful of Arm core part numbers (CPU implementer 0x41) for a readable model name where the kernel
# gives none; anything else is shown by its numbers.
_ARM_PARTS = {
    0xD0C: "Neoverse-N1", 0xD40: "Neoverse-V1", 0xD42: "Cortex-A78AE", 0xD49: "Neoverse-N2",
    0xD4F: "Neoverse-V2", 0xD85: "Cortex-X925", 0xD87: "Cortex-A725", 0xD8E: "Neoverse-N3",
}  # fmt: skip


@dataclass(frozen=True)
class CpuInfo:
    model: str | None = None
    cores_physical: int | None = None
    cores_logical: int | None = None
    simd: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def probe_cpu(root: Path, run: Runner, system: SystemInfo, native: Native, sysctl: dict[str, str]) -> CpuInfo:
    if system.os == "linux":
        return _linux(root)
    if system.os == "darwin":
        return _darwin(sysctl)
    if system.os == "windows":
        return _windows(run, native)
    physical, logical = native.cpu_counts()
    return CpuInfo(cores_physical=physical, cores_logical=logical, notes=(f"CPU details unknown on {system.os}",))


def _linux(root: Path) -> CpuInfo:
    notes: list[str] = []
    text = read_text(under(root, "/proc/cpuinfo"), notes)
    if not text:
        return CpuInfo(notes=(*notes, "CPU unknown: /proc/cpuinfo is missing or empty"))
    blocks = [b for b in re.split(r"\n\s*\n", text) if "processor" in b]
    entries = [dict(_pairs(b)) for b in blocks]
    first = entries[0] if entries else {}
    logical = len(entries) or None
    cores = {(e.get("physical id", "0"), e["core id"]) for e in entries if "core id" in e}
    physical = len(cores) or logical  # Arm kernels list no core ids; they have no SMT either
    flags = set((first.get("flags") or first.get("Features") or "").split())
    table = _X86_FLAGS if "flags" in first else _ARM_FLAGS
    simd = tuple(dict.fromkeys(name for flag, name in table.items() if flag in flags))
    model = first.get("model name") or first.get("Model") or _arm_model(entries, root)
    return CpuInfo(model=model, cores_physical=physical, cores_logical=logical, simd=simd, notes=tuple(notes))


def _pairs(block: str) -> list[tuple[str, str]]:
    out = []
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out.append((key.strip(), value.strip()))
    return out


def _arm_model(entries: list[dict[str, str]], root: Path) -> str | None:
    """Arm Linux kernels print no model name: use the device tree or DMI, else the core part numbers."""
    for path in ("/sys/firmware/devicetree/base/model", "/sys/class/dmi/id/product_name"):
        text = read_text(under(root, path))
        if text and text.strip("\x00 \n"):
            board = text.strip("\x00 \n")
            break
    else:
        board = None
    parts: list[str] = []
    for e in entries:
        try:
            implementer, part = int(e.get("CPU implementer", ""), 16), int(e.get("CPU part", ""), 16)
        except ValueError:
            continue
        name = _ARM_PARTS.get(part) if implementer == 0x41 else None
        label = name or f"implementer {implementer:#x} part {part:#x}"
        if label not in parts:
            parts.append(label)
    cores = " + ".join(parts) if parts else None
    if board and cores:
        return f"{board} ({cores})"
    return board or cores


def _darwin(sysctl: dict[str, str]) -> CpuInfo:
    def num(key: str) -> int | None:
        value = sysctl.get(key, "").strip()
        return int(value) if value.isdigit() else None

    simd: list[str] = []
    if num("hw.optional.AdvSIMD") or num("hw.optional.neon"):
        simd.append("neon")
    if num("hw.optional.arm.FEAT_DotProd"):
        simd.append("dotprod")
    if num("hw.optional.arm.FEAT_I8MM"):
        simd.append("i8mm")
    features = f"{sysctl.get('machdep.cpu.features', '')} {sysctl.get('machdep.cpu.leaf7_features', '')}".upper()
    for flag, name in (("AVX1.0", "avx"), ("AVX2", "avx2"), ("FMA", "fma"), ("AVX512F", "avx512")):
        if flag in features.split() or (name == "avx2" and num("hw.optional.avx2_0")):
            simd.append(name)
    notes: tuple[str, ...] = ()
    if not sysctl:
        notes = ("CPU unknown: sysctl gave no answer",)
    return CpuInfo(
        model=sysctl.get("machdep.cpu.brand_string") or None,
        cores_physical=num("hw.physicalcpu"),
        cores_logical=num("hw.logicalcpu"),
        simd=tuple(dict.fromkeys(simd)),
        notes=notes,
    )


WINDOWS_CPU_KEY = r"HKLM\HARDWARE\DESCRIPTION\System\CentralProcessor\0"


def _windows(run: Runner, native: Native) -> CpuInfo:
    notes: list[str] = []
    model = None
    result = run(["reg", "query", WINDOWS_CPU_KEY, "/v", "ProcessorNameString"], 5.0)
    if result is not None and result.returncode == 0:
        for line in result.stdout.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[0] == "ProcessorNameString":
                model = parts[2].strip()
    else:
        notes.append("CPU model unknown: `reg query` did not answer")
    physical, logical = native.cpu_counts()
    features = native.windows_cpu_features()
    if features is None:
        notes.append("SIMD flags unknown (IsProcessorFeaturePresent not available)")
    return CpuInfo(model, physical, logical, tuple(features or ()), tuple(notes))

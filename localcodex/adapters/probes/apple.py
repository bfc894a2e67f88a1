"""macOS: one `sysctl` call answers for the CPU, the RAM and the Apple GPU.

The Apple GPU has no memory of its own. What Metal lets it hold is `recommendedMaxWorkingSetSize`, which
llama.cpp (and so Ollama) reports as the GPU's total. It is not total RAM:

* When `iogpu.wired_limit_mb` is set (non-zero), Metal's working set follows it exactly (measured on an
  M3 16 GB, https://github.com/AlexsJones/llmfit/pull/754; 114688 MiB gave 112.00 GiB on an M5 Max 128 GB,
  https://github.com/antirez/ds4/pull/893).
* Otherwise macOS applies a default we cannot query without Metal. Measured values, from llama.cpp's
  `recommendedMaxWorkingSetSize` log line:
  - 16 GB: 10922.67 MiB = 2/3 (https://github.com/abetlen/llama-cpp-python/issues/687)
  - 32 GB: 21845.34 MiB = 2/3 (https://github.com/ollama/ollama/issues/434)
  - 36 GB (M4 Max): 28991.03 MB = 27648 MiB = 3/4 (llama.cpp log in a public notes repo)
  - 64 GB: 49152 MiB = 3/4 (https://github.com/ggml-org/llama.cpp/issues/1870)
  - 96 GB: 73728 MiB = 3/4 (https://github.com/ggml-org/llama.cpp/issues/3213)
  - 128 GB: 103079.22 MB = 96 GiB = 3/4 (llama.cpp logs, macOS 14/15)
  So: **2/3 of RAM up to 32 GiB, 3/4 above** (36 GB machines already get 3/4). macOS 26 raised the default
  (78 % on a 32 GB M2 Max, 84 % on a 128 GB M5 Max, same threads as above); we keep the older, smaller
  fractions on purpose: under-promising costs a smaller model, over-promising costs a failed load.
"""

from __future__ import annotations

from dataclasses import dataclass

from localcodex.adapters.probes.base import Runner, parse_int
from localcodex.domain.machine import GPU
from localcodex.domain.units import GiB, MiB

# Keys every Apple Silicon macOS knows first; the ones a given macOS or chip may lack last (sysctl reports an
# unknown key on stderr and goes on with the next one).
SYSCTL_KEYS = (
    "hw.memsize", "hw.physicalcpu", "hw.logicalcpu", "machdep.cpu.brand_string", "vm.swapusage",
    "kern.osproductversion", "sysctl.proc_translated", "hw.optional.arm64", "hw.optional.AdvSIMD",
    "hw.optional.neon", "hw.perflevel0.physicalcpu", "hw.perflevel1.physicalcpu", "iogpu.wired_limit_mb",
    "debug.iogpu.wired_limit", "hw.optional.arm.FEAT_DotProd", "hw.optional.arm.FEAT_I8MM", "hw.optional.avx2_0",
    "machdep.cpu.features", "machdep.cpu.leaf7_features",
)  # fmt: skip


def read_sysctl(run: Runner, notes: list[str]) -> dict[str, str]:
    """`sysctl KEY...` in its `key: value` form, so a key this Mac does not know (older macOS, Intel Mac)
    only drops its own line instead of shifting every value after it."""
    result = run(["sysctl", *SYSCTL_KEYS], 5.0)
    if result is None:
        notes.append("sysctl not found: CPU, RAM and GPU unknown")
        return {}
    values: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in SYSCTL_KEYS:
            values[key.strip()] = value.strip()
    return values


def default_working_set(ram: int) -> int:
    """Metal's default working set on macOS 13–15: 2/3 of RAM up to 32 GiB, 3/4 above.

    >>> [default_working_set(n * GiB) // MiB for n in (16, 32, 36, 128)]
    [10922, 21845, 27648, 98304]
    """
    return ram * 2 // 3 if ram <= 32 * GiB else ram * 3 // 4


@dataclass(frozen=True)
class WorkingSet:
    size: int
    explanation: str


def working_set(ram: int, wired_limit_mb: int | None) -> WorkingSet:
    if wired_limit_mb:
        return WorkingSet(wired_limit_mb * MiB, f"iogpu.wired_limit_mb = {wired_limit_mb}")
    fraction = "2/3" if ram <= 32 * GiB else "3/4"
    return WorkingSet(default_working_set(ram), f"macOS default, {fraction} of {ram / GiB:.0f} GiB RAM")


def probe_apple_gpu(sysctl: dict[str, str], arch: str, ram_total: int | None, ram_available: int | None) -> list[GPU]:
    apple_silicon = (
        arch == "arm64" or sysctl.get("hw.optional.arm64") == "1" or sysctl.get("sysctl.proc_translated") == "1"
    )
    if not apple_silicon or ram_total is None:
        return []
    wired = parse_int(sysctl.get("iogpu.wired_limit_mb", ""))
    if not wired and parse_int(sysctl.get("debug.iogpu.wired_limit", "")):  # macOS 13's name, in bytes
        wired = (parse_int(sysctl["debug.iogpu.wired_limit"]) or 0) // MiB
    ws = working_set(ram_total, wired)
    chip = sysctl.get("machdep.cpu.brand_string") or "Apple Silicon"
    notes = [f"unified memory: Metal working set {ws.size / GiB:.1f} GiB ({ws.explanation})"]
    if sysctl.get("sysctl.proc_translated") == "1":
        notes.append("this Python runs under Rosetta (x86_64); the machine is arm64")
    return [
        GPU(
            index=0,
            vendor="apple",
            name=f"{chip} GPU",
            memory_total=ws.size,
            memory_free=None,  # Metal reports no free figure; the budget caps it by free RAM
            backend="metal",
            integrated=True,
            unified_memory=True,
            used_by_ollama=True,
            compute=None,
            source="sysctl",
            notes=tuple(notes),
        )
    ]

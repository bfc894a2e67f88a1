"""Windows GPUs from the display-adapter class key of the registry.

WMI's `Win32_VideoController.AdapterRAM` is a uint32 and saturates near 4 GB (every 16 GB card reads
4293918720), so it is never used. The driver writes the real size as the 64-bit
`HardwareInformation.qwMemorySize`; older drivers only `HardwareInformation.MemorySize` (32-bit, noted).
NVIDIA cards are taken from nvidia-smi (which also gives free memory); the registry covers the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from localcodex.adapters.probes.base import Runner
from localcodex.domain.machine import GPU

DISPLAY_CLASS = r"HKLM\SYSTEM\CurrentControlSet\Control\Class\{4d36e968-e325-11ce-bfc1-08002be10318}"
_VALUES = (
    "DriverDesc",
    "HardwareInformation.qwMemorySize",
    "HardwareInformation.MemorySize",
    "MatchingDeviceId",
    "DriverVersion",
)
_SKIP = re.compile(r"Microsoft Basic|Remote Display|Virtual|Parsec|Citrix|Hyper-V|Meta Virtual|IddSample", re.I)
_AMD_IGPU = re.compile(
    r"Radeon\(TM\) Graphics|Radeon Graphics|Radeon\(TM\) \d{3}M|Radeon \d{3}M|Vega \d+ Graphics", re.I
)
_INTEL_DISCRETE = re.compile(r"Arc\(TM\) [AB]\d{3}|Arc [AB]\d{3}", re.I)  # A770, B580; plain "Arc Graphics" is an iGPU
_STRIX_HALO = re.compile(r"Radeon\(TM\) 80[56]0S|Radeon 80[56]0S", re.I)


def registry_command(value: str) -> list[str]:
    return ["reg", "query", DISPLAY_CLASS, "/s", "/v", value]


def parse_reg_values(text: str, value: str) -> dict[str, str]:
    """Subkey -> data for one value name, from `reg query KEY /s /v VALUE` (any language, CRLF or LF).

    >>> out = "\\r\\nHKEY_LOCAL_MACHINE\\\\X\\\\0000\\r\\n    DriverDesc    REG_SZ    AMD Radeon RX 7900 XTX\\r\\n"
    >>> parse_reg_values(out, "DriverDesc")
    {'0000': 'AMD Radeon RX 7900 XTX'}
    """
    found: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line.startswith("HKEY_"):
            key = line.strip().rsplit("\\", 1)[-1]
            continue
        parts = line.strip().split(None, 2)
        if key is not None and len(parts) == 3 and parts[0] == value and parts[1].startswith("REG_"):
            found[key] = parts[2].strip()
    return found


def _number(data: str | None) -> int | None:
    if not data:
        return None
    data = data.strip()
    try:
        if data.lower().startswith("0x"):
            return int(data, 16)
        if re.fullmatch(r"[0-9a-fA-F]+", data) and len(data) in (8, 16):  # REG_BINARY, little-endian
            return int.from_bytes(bytes.fromhex(data), "little")
        return int(data)
    except ValueError:
        return None


def probe_windows_gpus(
    run: Runner, env: Mapping[str, str], skip_names: set[str], first_index: int, notes: list[str]
) -> list[GPU]:
    answers: dict[str, dict[str, str]] = {}
    for value in _VALUES:
        result = run(registry_command(value), 10.0)
        if result is None:
            notes.append("reg.exe not found: Windows GPUs other than NVIDIA unknown")
            return []
        answers[value] = parse_reg_values(result.stdout, value) if result.returncode == 0 else {}
    gpus: list[GPU] = []
    for key, desc in sorted(answers["DriverDesc"].items()):
        if _SKIP.search(desc) or desc in skip_names:
            continue
        device_id = answers["MatchingDeviceId"].get(key, "").lower()
        vendor = (
            "nvidia"
            if "ven_10de" in device_id or "nvidia" in desc.lower()
            else (
                "amd"
                if "ven_1002" in device_id or re.search(r"\bAMD\b|Radeon", desc)
                else ("intel" if "ven_8086" in device_id or "intel" in desc.lower() else "other")
            )
        )
        if vendor == "nvidia" and any("nvidia" in name.lower() for name in skip_names):
            continue  # nvidia-smi answered for the NVIDIA cards (with free memory): its answer stands
        gpus.append(_gpu(first_index + len(gpus), key, desc, vendor, answers, env))
    return gpus


def _gpu(
    index: int, key: str, desc: str, vendor: str, answers: dict[str, dict[str, str]], env: Mapping[str, str]
) -> GPU:
    notes = ["memory from the registry (HardwareInformation.qwMemorySize), not WMI's 4 GB-capped AdapterRAM"]
    total = _number(answers["HardwareInformation.qwMemorySize"].get(key))
    if total is None:
        total = _number(answers["HardwareInformation.MemorySize"].get(key))
        if total is not None:
            notes = ["memory from the 32-bit HardwareInformation.MemorySize: capped at 4 GB, pass --vram if larger"]
    integrated = (vendor == "intel" and not _INTEL_DISCRETE.search(desc)) or (
        vendor == "amd" and bool(_AMD_IGPU.search(desc) or _STRIX_HALO.search(desc))
    )
    kept = bool(_STRIX_HALO.search(desc)) or (env.get("OLLAMA_IGPU_ENABLE", "").strip() in ("1", "true"))
    used = not integrated or kept
    if integrated and not kept:
        notes.append("integrated GPU: Ollama does not use it unless OLLAMA_IGPU_ENABLE=1")
    if total is not None:
        notes.append("free memory is not reported on Windows for this GPU: the budget starts from its total")
    backend = {"amd": "rocm", "nvidia": "cuda"}.get(vendor, "vulkan")
    if vendor == "nvidia":
        notes.append("nvidia-smi did not answer: is the NVIDIA driver installed?")
    return GPU(
        index=index,
        vendor=vendor,
        name=desc,
        memory_total=total,
        memory_free=None,
        backend=backend,
        integrated=integrated,
        unified_memory=integrated,
        used_by_ollama=used,
        driver=answers["DriverVersion"].get(key),
        source="registry",
        notes=tuple(notes),
    )

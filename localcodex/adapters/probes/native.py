"""The few facts that come from library calls rather than files or commands: psutil on macOS and Windows,
disk usage, Windows CPU feature bits, and NVIDIA's NVML.

They are grouped in `Native` so tests (and the recorded machines) can replace them with recorded values;
`Native()` is the real machine. Each call returns None rather than raising when the fact is unavailable.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MemorySnapshot:
    total: int
    available: int
    swap_total: int | None = None
    swap_free: int | None = None


@dataclass(frozen=True)
class NvmlDevice:
    index: int
    name: str
    memory_total: int | None
    memory_free: int | None
    driver: str | None
    compute: str | None
    pci_bus: str | None


@dataclass(frozen=True)
class NvmlReport:
    devices: tuple[NvmlDevice, ...] = ()
    error: str | None = None  # why NVML could not be used; the caller falls back to nvidia-smi


class Native:
    """Library-backed probes of the machine this process runs on."""

    def memory(self) -> MemorySnapshot | None:
        try:
            import psutil

            vm = psutil.virtual_memory()
            sw = psutil.swap_memory()
        except Exception:  # psutil missing or unsupported platform
            return None
        return MemorySnapshot(int(vm.total), int(vm.available), int(sw.total), int(sw.free))

    def cpu_counts(self) -> tuple[int | None, int | None]:
        """(physical, logical) cores."""
        try:
            import psutil

            return psutil.cpu_count(logical=False), psutil.cpu_count(logical=True)
        except Exception:
            import os

            return None, os.cpu_count()

    def disk_usage(self, path: Path) -> tuple[int, int] | None:
        """(total, free) bytes of the filesystem holding `path`."""
        try:
            usage = shutil.disk_usage(path)
        except OSError:
            return None
        return int(usage.total), int(usage.free)

    def windows_cpu_features(self) -> tuple[str, ...] | None:
        """SIMD flags from `IsProcessorFeaturePresent` (Windows only)."""
        if sys.platform != "win32":
            return None
        try:
            import ctypes

            present = ctypes.windll.kernel32.IsProcessorFeaturePresent  # type: ignore[attr-defined]
        except Exception:
            return None
        # PF_AVX_INSTRUCTIONS_AVAILABLE 39, PF_AVX2 40, PF_AVX512F 41 (winnt.h)
        names = {39: "avx", 40: "avx2", 41: "avx512"}
        return tuple(name for code, name in names.items() if present(code))

    def nvml(self) -> NvmlReport | None:
        """Every NVIDIA GPU as NVML sees it (None: do not use NVML). `nvidia-ml-py` is optional, imported here."""
        try:
            import pynvml
        except ImportError:
            return NvmlReport(error="nvidia-ml-py is not installed")
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return NvmlReport(error=f"NVML did not start: {exc}")
        try:
            driver = _text(_nvml_call(pynvml.nvmlSystemGetDriverVersion))
            devices = []
            for index in range(pynvml.nvmlDeviceGetCount()):
                devices.append(_nvml_device(pynvml, index, driver))
            return NvmlReport(devices=tuple(devices))
        except Exception as exc:
            return NvmlReport(error=f"NVML query failed: {exc}")
        finally:
            with contextlib.suppress(Exception):
                pynvml.nvmlShutdown()


def _nvml_call(fn: Any, *args: Any) -> Any:
    """One NVML call, None when this device does not support it (e.g. memory info on a GB10)."""
    try:
        return fn(*args)
    except Exception:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml_device(pynvml: Any, index: int, driver: str | None) -> NvmlDevice:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = _nvml_call(pynvml.nvmlDeviceGetMemoryInfo, handle)
    capability = _nvml_call(pynvml.nvmlDeviceGetCudaComputeCapability, handle)
    pci = _nvml_call(pynvml.nvmlDeviceGetPciInfo, handle)
    total = int(memory.total) if memory is not None and memory.total else None
    free = int(memory.free) if memory is not None and total else None
    return NvmlDevice(
        index=index,
        name=_text(_nvml_call(pynvml.nvmlDeviceGetName, handle)) or f"NVIDIA GPU {index}",
        memory_total=total,
        memory_free=free,
        driver=driver,
        compute=f"{capability[0]}.{capability[1]}" if capability else None,
        pci_bus=_text(getattr(pci, "busId", None)) if pci is not None else None,
    )

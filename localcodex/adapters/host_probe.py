"""A minimal description of this machine (OS, CPU, cores, RAM) for the receipts fingerprint.

This is the stop-gap until `localcodex.core.detect` is on main: it finds no GPUs. It reads only what
`platform`, `psutil` and (on Linux) `/proc/cpuinfo` say; nothing here identifies a person.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from localcodex.core.machine import Machine

_ARCH = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def _os_name() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform.startswith("win"):
        return "windows"
    return sys.platform


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's marketing name: `/proc/cpuinfo` on Linux, else what `platform` knows."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def basic_machine() -> Machine:
    import psutil

    memory = psutil.virtual_memory()
    machine = platform.machine().lower()
    return Machine(
        os=_os_name(),
        arch=_ARCH.get(machine, machine or "unknown"),
        cpu_model=cpu_model(),
        cores_physical=psutil.cpu_count(logical=False),
        cores_logical=psutil.cpu_count(logical=True),
        simd=(),
        ram_total=int(memory.total),
        ram_available=int(memory.available),
        notes=("GPUs not probed (fingerprint from the basic probe)",),
    )

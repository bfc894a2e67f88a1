"""System memory: total, available, swap, and the container (cgroup) limit that wins over them.

Linux reads `/proc/meminfo` and the cgroup files directly (no psutil: the same files, and testable with a fake
root); macOS uses `sysctl hw.memsize` and `vm_stat` with the page formula Ollama uses; Windows uses psutil.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from localcodex.adapters.probes.base import Runner, SystemInfo, parse_int, read_text, under
from localcodex.adapters.probes.native import Native

# cgroup v1 reports "no limit" as PAGE_COUNTER_MAX rounded to the page size (9223372036854771712);
# anything this large is no limit.
_NO_LIMIT = 1 << 60


@dataclass(frozen=True)
class MemoryInfo:
    total: int | None = None
    available: int | None = None
    swap_total: int | None = None
    swap_free: int | None = None
    source: str = "unknown"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CgroupInfo:
    limit: int | None = None  # bytes, None when there is no limit (or it is not below RAM)
    used: int | None = None  # bytes charged to the group, page cache that can be dropped excluded
    version: int | None = None  # 1 or 2
    path: str | None = None
    notes: tuple[str, ...] = ()


def probe_memory(root: Path, run: Runner, system: SystemInfo, native: Native, sysctl: dict[str, str]) -> MemoryInfo:
    if system.os == "linux":
        return _meminfo(root)
    if system.os == "darwin":
        return _darwin(run, sysctl, native)
    snap = native.memory()
    if snap is None:
        return MemoryInfo(notes=("RAM unknown: psutil could not read it",))
    return MemoryInfo(snap.total, snap.available, snap.swap_total, snap.swap_free, "psutil")


def _meminfo(root: Path) -> MemoryInfo:
    notes: list[str] = []
    text = read_text(under(root, "/proc/meminfo"), notes)
    if not text:
        return MemoryInfo(notes=(*notes, "RAM unknown: /proc/meminfo is missing or empty"))
    values: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?\s*$", line)
        if m:
            values[m.group(1)] = int(m.group(2)) * (1024 if line.rstrip().endswith("kB") else 1)
    total = values.get("MemTotal")
    available = values.get("MemAvailable")
    if available is None and total is not None:  # kernels before 3.14
        available = sum(values.get(k, 0) for k in ("MemFree", "Buffers", "Cached"))
        notes.append("MemAvailable missing: used MemFree + Buffers + Cached")
    if total is None:
        notes.append("RAM unknown: no MemTotal in /proc/meminfo")
    return MemoryInfo(total, available, values.get("SwapTotal"), values.get("SwapFree"), "/proc/meminfo", tuple(notes))


def _darwin(run: Runner, sysctl: dict[str, str], native: Native) -> MemoryInfo:
    notes: list[str] = []
    total = parse_int(sysctl.get("hw.memsize", ""))
    available = None
    result = run(["vm_stat"], 5.0)
    if result is not None and result.returncode == 0:
        available = vm_stat_available(result.stdout, total)
    if available is None:
        notes.append("available RAM: vm_stat gave no usable answer")
    swap_total, swap_free = _swapusage(sysctl.get("vm.swapusage", ""))
    if total is None or available is None:
        snap = native.memory()
        if snap is not None:
            total = total or snap.total
            available = available if available is not None else snap.available
            notes.append("RAM read with psutil")
    return MemoryInfo(total, available, swap_total, swap_free, "sysctl + vm_stat", tuple(notes))


def vm_stat_available(text: str, total: int | None) -> int | None:
    """Free memory the way Ollama computes it on macOS: total minus (active + inactive + speculative + wired
    + compressor − purgeable − file-backed) pages.

    >>> out = '''Mach Virtual Memory Statistics: (page size of 16384 bytes)
    ... Pages free:                               10000.
    ... Pages active:                             100000.
    ... Pages inactive:                            90000.
    ... Pages speculative:                         10000.
    ... Pages wired down:                         200000.
    ... Pages purgeable:                            5000.
    ... File-backed pages:                         95000.
    ... Pages occupied by compressor:              20000.'''
    >>> vm_stat_available(out, 36 * 1024**3) // 1024**2
    31864
    """
    if total is None:
        return None
    page = re.search(r"page size of (\d+) bytes", text)
    size = int(page.group(1)) if page else 4096
    pages: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r'^"?([^":]+)"?:\s+(\d+)\.?\s*$', line.strip())
        if m:
            pages[m.group(1).strip()] = int(m.group(2))
    needed = ("Pages active", "Pages inactive", "Pages wired down")
    if not all(k in pages for k in needed):
        return None
    used = (
        pages["Pages active"]
        + pages["Pages inactive"]
        + pages.get("Pages speculative", 0)
        + pages["Pages wired down"]
        + pages.get("Pages occupied by compressor", 0)
        - pages.get("Pages purgeable", 0)
        - pages.get("File-backed pages", 0)
    ) * size
    return max(0, min(total, total - used))


def _swapusage(text: str) -> tuple[int | None, int | None]:
    """`vm.swapusage: total = 2048.00M  used = 1024.50M  free = 1023.50M  (encrypted)`.

    >>> _swapusage("total = 2048.00M  used = 1024.50M  free = 1023.50M  (encrypted)")
    (2147483648, 1073217536)
    >>> _swapusage("")
    (None, None)
    """
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    found = dict(re.findall(r"(total|free) = ([\d.]+[KMG])", text))
    if "total" not in found or "free" not in found:
        return None, None

    def to_bytes(v: str) -> int:
        return int(float(v[:-1]) * units[v[-1]])

    return to_bytes(found["total"]), to_bytes(found["free"])


def probe_cgroup(root: Path, ram_total: int | None) -> CgroupInfo:
    """The memory limit of this process's cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`), the
    tightest one along the path to the root, with what the group uses now."""
    notes: list[str] = []
    text = read_text(under(root, "/proc/self/cgroup"), notes) or ""
    v2_path = v1_path = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
        elif "memory" in parts[1].split(","):
            v1_path = parts[2]
    base = under(root, "/sys/fs/cgroup")
    if v2_path is not None and (base / "cgroup.controllers").exists():
        info = _cgroup_files(base, v2_path, "memory.max", "memory.current", "inactive_file", 2, notes)
    elif v1_path is not None or (base / "memory").is_dir():
        info = _cgroup_files(
            base / "memory",
            v1_path or "/",
            "memory.limit_in_bytes",
            "memory.usage_in_bytes",
            "total_inactive_file",
            1,
            notes,
        )
    else:
        return CgroupInfo(notes=tuple(notes))
    if info.limit is None or (ram_total is not None and info.limit >= ram_total):
        return CgroupInfo(None, None, info.version, None, info.notes)  # no limit, or not a real constraint
    return info


def _cgroup_files(
    mount: Path, group: str, limit_file: str, usage_file: str, inactive_key: str, version: int, notes: list[str]
) -> CgroupInfo:
    """Walk from the process's group up to the mount root; the smallest limit wins. Inside a container the
    group path of the host often does not exist in the container's view, so missing levels are skipped."""
    rel = [p for p in group.strip("/").split("/") if p]
    candidates = [mount.joinpath(*rel[:i]) for i in range(len(rel), -1, -1)]
    limit: int | None = None
    where: Path | None = None
    for folder in candidates:
        text = read_text(folder / limit_file, notes)
        if text is None:
            continue
        value = None if text.strip() == "max" else parse_int(text)
        if value is not None and value < _NO_LIMIT and (limit is None or value < limit):
            limit, where = value, folder
    usage_dir = where or next((c for c in candidates if (c / usage_file).exists()), None)
    used = None
    if usage_dir is not None:
        used = parse_int(read_text(usage_dir / usage_file, notes) or "")
        stat = read_text(usage_dir / "memory.stat", notes) or ""
        inactive = re.search(rf"^{inactive_key} (\d+)$", stat, re.M)
        if used is not None and inactive:
            used = max(0, used - int(inactive.group(1)))
    path = "/" + "/".join(where.relative_to(mount).parts) if where is not None else None
    return CgroupInfo(limit, used, version, path, tuple(notes))

"""What every probe shares: the command runner, tolerant file reading, and the system descriptor.

A probe never raises for the machine being odd: a missing tool, a permission error, a file with unexpected
content all become "unknown" plus a note saying why. Only programming errors propagate.
"""

from __future__ import annotations

import os
import platform as _platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class CompletedLike(Protocol):
    """What a runner returns: the shape of `subprocess.CompletedProcess` with text output."""

    @property
    def returncode(self) -> int: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""


# (argv, timeout seconds) -> result, or None when the executable is not there (nothing was started).
Runner = Callable[[list[str], float], "CompletedLike | None"]


def default_runner(argv: list[str], timeout: float) -> CompletedLike | None:
    """Run a tool if it exists. `shutil.which` first, so an absent tool starts no process at all.

    Output is decoded as UTF-8 with replacement (Windows tools may print in the console code page),
    the locale is forced to C so numbers and messages have one format, and stdin is closed.
    """
    exe = shutil.which(argv[0])
    if exe is None:
        return None
    env = dict(os.environ, LC_ALL="C", LANG="C")
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    try:
        proc = subprocess.run(
            [exe, *argv[1:]],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=env,
            creationflags=flags,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return RunResult(returncode=-1, stderr=f"timed out after {timeout:g} s")
    except OSError as exc:  # not executable, permission denied, exec format error
        return RunResult(returncode=126, stderr=str(exc))
    return RunResult(proc.returncode, proc.stdout or "", proc.stderr or "")


def first_line(text: str) -> str:
    """The first non-empty line, for notes quoting a tool's error.

    >>> first_line("\\n  NVIDIA-SMI has failed\\nmore")
    'NVIDIA-SMI has failed'
    """
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def describe_failure(tool: str, result: CompletedLike) -> str:
    reason = first_line(result.stderr) or first_line(result.stdout) or "no output"
    return f"{tool} failed (exit {result.returncode}): {reason}"


def under(root: Path, path: str | Path) -> Path:
    """`path` (absolute, as on the real machine) inside the filesystem `root`.

    >>> under(Path("/tmp/fake"), "/proc/meminfo").as_posix()
    '/tmp/fake/proc/meminfo'
    >>> under(Path("/"), "/proc/meminfo").as_posix()
    '/proc/meminfo'
    """
    return root / str(path).lstrip("/")


def read_text(path: Path, notes: list[str] | None = None) -> str | None:
    """A file's text, or None when it is absent; unreadable files add a note."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except PermissionError:
        if notes is not None:
            notes.append(f"cannot read {path}: permission denied")
        return None
    except OSError as exc:  # EIO/ENODEV from sysfs attributes, a directory where a file was expected
        if notes is not None:
            notes.append(f"cannot read {path}: {exc.strerror or exc}")
        return None


def read_int(path: Path, notes: list[str] | None = None) -> int | None:
    """An integer sysfs attribute (decimal or 0x-hex), or None."""
    text = read_text(path, notes)
    if text is None:
        return None
    value = parse_int(text.strip())
    if value is None and notes is not None:
        notes.append(f"unexpected content in {path}: {text.strip()[:40]!r}")
    return value


def parse_int(text: str) -> int | None:
    """
    >>> parse_int("0x1002"), parse_int("25753026560"), parse_int("[N/A]"), parse_int(" 42 ")
    (4098, 25753026560, None, 42)
    """
    text = text.strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class SystemInfo:
    """Which kind of machine the probes are looking at (not necessarily this one, in tests)."""

    os: str  # "linux" | "darwin" | "windows" | other platform.system().lower()
    arch: str  # "x86_64" | "arm64" | ...
    release: str | None = None


_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def normalize_arch(machine: str) -> str:
    """
    >>> normalize_arch("AMD64"), normalize_arch("aarch64"), normalize_arch("x86_64")
    ('x86_64', 'arm64', 'x86_64')
    """
    lower = machine.lower()
    return _ARCH_ALIASES.get(lower, lower or "unknown")


def current_system() -> SystemInfo:
    return SystemInfo(
        os=_platform.system().lower() or "unknown",
        arch=normalize_arch(_platform.machine()),
        release=_platform.release() or None,
    )

"""What `doctor` reads from the machine besides Codex's config: shell start-up files, the Ollama service's
environment, listening sockets, file modes.

Every reader takes its roots (home folder, filesystem root) as parameters so tests point them at a fake tree;
`HostEnv` bundles them so a test can replace one probe (the socket table) without touching the others.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

# Read in this order; a later file usually sources an earlier one, so each assignment is reported where it is.
SHELL_STARTUP_FILES = (
    ".profile", ".bash_profile", ".bash_login", ".bashrc", ".zshenv", ".zprofile", ".zshrc",
    ".config/fish/config.fish",
)  # fmt: skip

_POSIX_ASSIGN = re.compile(
    r"^\s*(?P<export>(?:export|declare\s+-x|typeset\s+-x|declare\s+-gx|typeset\s+-gx)\s+)?(?P<name>[A-Za-z_]\w*)="
)
_POSIX_EXPORT_ONLY = re.compile(r"^\s*export\s+(?P<names>[A-Za-z_]\w*(?:\s+[A-Za-z_]\w*)*)\s*(?:#.*)?$")
_FISH_SET = re.compile(r"^\s*set\s+(?P<flags>(?:--?[A-Za-z-]+\s+)*)(?P<name>[A-Za-z_]\w*)(?:\s|$)")


@dataclass(frozen=True)
class ShellAssignment:
    """`NAME=…` in a shell start-up file: where, and whether a child process (Codex) would see it."""

    file: Path
    line: int
    exported: bool


@dataclass(frozen=True)
class ServiceSetting:
    """One `Environment=NAME=VALUE` of the Ollama service (systemd unit or drop-in)."""

    file: Path
    line: int
    name: str
    value: str


def shell_assignments(home: Path, name: str) -> tuple[ShellAssignment, ...]:
    """Every assignment of `name` in the user's shell start-up files, with its export status.

    A POSIX `NAME=value` followed later in the same file by `export NAME` counts as exported.
    """
    found: list[ShellAssignment] = []
    for rel in SHELL_STARTUP_FILES:
        path = home / rel
        text = _read_text(path)
        if text is not None:
            scan = _scan_fish if rel.endswith(".fish") else _scan_posix
            found.extend(scan(path, text, name))
    return tuple(found)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _scan_posix(path: Path, text: str, name: str) -> list[ShellAssignment]:
    lines = text.splitlines()
    exported_later = {
        number
        for number, line in enumerate(lines, start=1)
        if (m := _POSIX_EXPORT_ONLY.match(line)) and name in m.group("names").split()
    }
    found = []
    for number, line in enumerate(lines, start=1):
        m = _POSIX_ASSIGN.match(line)
        if m and m.group("name") == name:
            exported = bool(m.group("export")) or any(n > number for n in exported_later)
            found.append(ShellAssignment(path, number, exported))
    return found


def _scan_fish(path: Path, text: str, name: str) -> list[ShellAssignment]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        m = _FISH_SET.match(line)
        if m and m.group("name") == name:
            flags = m.group("flags").split()
            exported = any(f == "--export" or (not f.startswith("--") and "x" in f) for f in flags)
            found.append(ShellAssignment(path, number, exported))
    return found


def service_unit_files(root: Path, home: Path | None = None) -> tuple[Path, ...]:
    """The Ollama systemd unit and its drop-ins, in the order systemd applies them (later wins)."""
    files: list[Path] = []
    bases = [root / "lib/systemd/system", root / "usr/lib/systemd/system", root / "etc/systemd/system"]
    if home is not None:
        bases.append(home / ".config/systemd/user")
    for base in bases:
        unit = base / "ollama.service"
        if unit.is_file():
            files.append(unit)
    for base in bases:
        files.extend(Path(p) for p in sorted(glob.glob(str(base / "ollama.service.d" / "*.conf"))))
    return tuple(files)


def service_environment(root: Path, home: Path | None = None) -> dict[str, ServiceSetting]:
    """The environment the Ollama service starts with: last `Environment=` assignment of each name wins."""
    result: dict[str, ServiceSetting] = {}
    for path in service_unit_files(root, home):
        text = _read_text(path) or ""
        for number, line in enumerate(text.splitlines(), start=1):
            for setting in _environment_line(path, number, line):
                result[setting.name] = setting
    return result


def _environment_line(path: Path, number: int, line: str) -> list[ServiceSetting]:
    key, sep, rest = line.strip().partition("=")
    if not sep or key.strip() != "Environment":
        return []
    try:
        words = shlex.split(rest, comments=False, posix=True)
    except ValueError:
        words = rest.split()
    settings = []
    for word in words:
        name, eq, value = word.partition("=")
        if eq and name:
            settings.append(ServiceSetting(path, number, name, value))
    return settings


def file_mode(path: Path) -> int | None:
    """Permission bits of a file, or None where they mean nothing (Windows) or cannot be read."""
    if os.name != "posix":
        return None
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


def listening_addresses(port: int) -> tuple[str, ...] | None:
    """Local addresses with a TCP socket listening on `port`, or None when the OS does not let us look."""
    try:
        import psutil

        connections = psutil.net_connections(kind="tcp")
    except Exception:  # AccessDenied on macOS without root, or no psutil support on this platform
        return None
    addresses = {
        c.laddr.ip
        for c in connections
        if c.status == "LISTEN" and c.laddr and getattr(c.laddr, "port", None) == port
    }
    return tuple(sorted(addresses))


class HostEnv:
    """The machine as doctor sees it. Tests subclass it to replace one probe."""

    def __init__(self, root: Path = Path("/"), home: Path | None = None) -> None:
        self.root = root
        self.home = home

    def shell_assignments(self, name: str) -> tuple[ShellAssignment, ...]:
        return shell_assignments(self.home, name) if self.home else ()

    def service_environment(self) -> dict[str, ServiceSetting]:
        return service_environment(self.root, self.home)

    def listening_addresses(self, port: int) -> tuple[str, ...] | None:
        return listening_addresses(port)

    def file_mode(self, path: Path) -> int | None:
        return file_mode(path)

    def exists(self, path: Path) -> bool:
        with contextlib.suppress(OSError):
            return path.exists()
        return False

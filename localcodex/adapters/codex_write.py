"""One Codex config file replaced safely: atomically (temp file in the same folder, fsync, `os.replace`, fsync of
the folder), its mode and owner kept, a new file created 0600, and temp files of killed writers swept (only
those whose process is gone). A symlinked config is written through to its target.

The caller holds `codex_lock.locked()` on the file's folder; `codex_changes` decides what to write.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from pathlib import Path

from localcodex.adapters import files
from localcodex.adapters.codex_config import permission_hint
from localcodex.errors import ConfigError

NEW_FILE_MODE = 0o600
TEMP_MARK = ".localcodex-tmp-"


def resolve_target(path: Path) -> Path:
    """Where a write to `path` lands.

    A symlinked config (dotfiles kept in a repository and linked into ~/.codex) is written *through*: the
    link stays, its target gets the new content. Replacing the link with a plain file would silently
    detach the user's dotfiles; refusing would make localcodex useless for them. The result says which
    file was written. A dangling link, a loop, or a link whose target folder is missing is an error.
    """
    if not path.is_symlink():
        return path
    try:
        target = path.resolve(strict=False)
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"{path} is a symlink that cannot be resolved ({exc})", f"fix or remove {path}") from None
    if target.is_symlink() or not target.parent.is_dir():
        raise ConfigError(
            f"{path} is a symlink to {target}, which cannot be written (missing folder or link loop)",
            f"fix the link, or remove {path} so localcodex can create a plain file",
        )
    return target


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` (a resolved, non-symlink path) with `text`, atomically.

    Keeps the mode (and, when run as root, the owner) of an existing file; a new file gets 0600 because
    Codex configs can hold tokens. Leftover temp files of an earlier killed run are removed first (the
    caller holds the config lock, so none of them can belong to a live writer).
    """
    folder = path.parent
    try:
        existing = path.stat()
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise _write_error(path, exc) from None
    if not folder.is_dir():
        raise ConfigError(f"cannot write {path}: folder {folder} does not exist", f"create {folder} first")
    remove_stale_temps(folder, path.name)
    tmp = folder / f".{path.name}{TEMP_MARK}{os.getpid()}-{time.monotonic_ns()}"
    mode = stat.S_IMODE(existing.st_mode) if existing else NEW_FILE_MODE
    try:
        _write_temp(tmp, text.encode("utf-8"), mode, existing)
        _before_replace(tmp, path)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _write_error(path, exc) from None
    fsync_dir(folder)


def _before_replace(tmp: Path, path: Path) -> None:
    """A seam for the crash tests: the temp file is complete and synced, the target not yet replaced."""


def _write_temp(tmp: Path, data: bytes, mode: int, existing: os.stat_result | None) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # the umask must not loosen or tighten the mode we keep
        if existing is not None and hasattr(os, "fchown") and hasattr(os, "geteuid") and os.geteuid() == 0:
            with contextlib.suppress(OSError):
                os.fchown(fd, existing.st_uid, existing.st_gid)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path, name: str = "*") -> None:
    """Temp files of writers that are gone (their pid is in the name); a live writer's file is left alone,
    whichever data folder or lock that writer uses."""
    with contextlib.suppress(OSError):
        for leftover in folder.glob(f".{name}{TEMP_MARK}*"):
            pid = _temp_owner(leftover.name)
            if pid is not None and pid != os.getpid() and pid_alive(pid):
                continue
            with contextlib.suppress(OSError):
                leftover.unlink()


def _temp_owner(name: str) -> int | None:
    """The pid in `.NAME.localcodex-tmp-PID-NS`; None for a name without one (removed as stale).

    >>> _temp_owner(".config.toml.localcodex-tmp-4242-123456")
    4242
    """
    tail = name.rpartition(TEMP_MARK)[2]
    pid, _, _ = tail.partition("-")
    return int(pid) if pid.isdigit() else None


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.pid_exists(pid)
    except (OSError, ValueError):  # cannot tell: keep the file
        return True


def fsync_dir(folder: Path) -> None:
    if sys.platform.startswith("win"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def delete(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _write_error(path, exc) from None
    fsync_dir(path.parent)


def _write_error(path: Path, exc: OSError) -> ConfigError:
    reason = exc.strerror or str(exc)
    return ConfigError(f"cannot write {path}: {reason}", permission_hint(path), code="config_write")


def file_mode(path: Path) -> int | None:
    """The permission bits of `path` (through a symlink); None when it does not exist or cannot be read."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


def remove_group_other(path: Path) -> int:
    """Take every group and other permission off `path` (never adds one); the new mode. ConfigError when it
    cannot (another user's file)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode) & 0o700
        os.chmod(path, mode)
    except OSError as exc:
        raise ConfigError(f"cannot change the mode of {path}: {exc.strerror or exc}", permission_hint(path)) from None
    return mode


def make_private_dir(folder: Path) -> None:
    """Create `folder` (and missing parents) 0700; ConfigError on failure."""
    try:
        files.make_private_dir(folder)
    except OSError as exc:
        raise ConfigError(f"cannot create {folder}: {exc.strerror or exc}", permission_hint(folder)) from None


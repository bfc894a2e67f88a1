"""The lock every change to Codex's files is made under.

`locked(paths)` takes an exclusive OS lock on the folder of every file a run may change (and on localcodex's
backups folder), in sorted order. The lock sits on the protected files' own folder, so two localcodex processes
exclude each other whatever their data folders (another HOME, sudo, a second install); the OS drops it when a
process dies, so a crash never leaves a stale lock. Inside the lock, a journal a killed run left in one of those
folders is finished first (`codex_changes.recover`), and temp files of dead writers are swept.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from localcodex.adapters.codex_changes import recover
from localcodex.adapters.codex_config import permission_hint
from localcodex.adapters.codex_write import NEW_FILE_MODE, make_private_dir, remove_stale_temps, resolve_target
from localcodex.errors import ConfigError

LOCK_TIMEOUT = 10.0
FOLDER_LOCK_NAME = ".localcodex.lock"  # only where a folder itself cannot be locked (Windows, some NFS)


@contextlib.contextmanager
def config_lock(lock_path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive OS lock on `lock_path` (created if needed) for the duration of the block.

    `fcntl.flock` on POSIX, `msvcrt.locking` on Windows; both are released by the OS if the process dies.
    Waits up to `timeout` seconds, then raises ConfigError naming the process that holds it.
    """
    make_private_dir(lock_path.parent)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, NEW_FILE_MODE)
    except OSError as exc:
        raise ConfigError(f"cannot open lock file {lock_path}: {exc.strerror or exc}",
                          permission_hint(lock_path)) from None
    try:
        _acquire(fd, lock_path, LOCK_TIMEOUT if timeout is None else timeout)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            _release(fd)
    finally:
        os.close(fd)


def _acquire(fd: int, lock_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _try_lock(fd):
        if time.monotonic() >= deadline:
            raise _locked_error(lock_path, _lock_holder(lock_path), timeout)
        time.sleep(0.05)


def _try_lock(fd: int) -> bool:
    if sys.platform.startswith("win"):
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _release(fd: int) -> None:
    if sys.platform.startswith("win"):
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def _lock_holder(lock_path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(lock_path.read_text().split()[0])
        return f" (process {pid})"
    return ""


@contextlib.contextmanager
def locked(paths: Iterable[Path], timeout: float | None = None) -> Iterator[list[str]]:
    """Hold an exclusive lock on the folder of each of `paths` (resolved through symlinks) for the block.

    Folders are locked in sorted order, so two runs that need overlapping folders never wait on each other
    in a circle. Inside, a journal left by a killed run in one of these folders is finished first; the
    block receives the list of notes saying so (for the command's warnings).
    """
    folders = sorted({resolve_target(Path(p)).parent.resolve() for p in paths}, key=str)
    folders = [f for f in folders if f.is_dir()]  # nothing to protect in a folder that does not exist (dry run)
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        for folder in folders:
            stack.enter_context(_folder_lock(folder, LOCK_TIMEOUT if timeout is None else timeout))
        for folder in folders:
            notes += recover(folder, held=folders)
            remove_stale_temps(folder)
        yield notes


@contextlib.contextmanager
def _folder_lock(folder: Path, timeout: float) -> Iterator[None]:
    """flock on the folder itself (no file left behind); where that is not possible, a lock file in it."""
    if sys.platform.startswith("win"):
        with config_lock(folder / FOLDER_LOCK_NAME, timeout):
            yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError(f"cannot open {folder}: {exc.strerror or exc}", permission_hint(folder)) from None
    try:
        import fcntl

        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _locked_error(folder, _folder_holder(folder), timeout) from None
                time.sleep(0.05)
            except OSError:  # a file system without flock on folders: fall back to a lock file
                os.close(fd)
                fd = -1
                with config_lock(folder / FOLDER_LOCK_NAME, timeout):
                    yield
                return
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        if fd >= 0:
            os.close(fd)


def _locked_error(where: Path, holder: str, timeout: float) -> ConfigError:
    return ConfigError(
        f"another localcodex{holder} is changing files in {where} (waited {timeout:g} s for its lock)",
        "wait for it to finish and run this again",
        code="config_locked",
    )


def _folder_holder(folder: Path) -> str:
    """The process holding the flock on `folder`, from /proc/locks (Linux); empty when unknown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        inode = os.stat(folder).st_ino
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "->" in fields or "FLOCK" not in fields:
                continue
            at = fields.index("FLOCK")
            if int(fields[at + 4].split(":")[-1]) == inode:
                return f" (process {int(fields[at + 3])})"
    return ""


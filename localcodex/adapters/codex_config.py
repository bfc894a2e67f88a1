"""Codex's TOML files on disk: read them the way Codex layers them, and change them safely.

Safety, in the order a write happens:

1. `locked(paths)` takes an exclusive OS lock on the folder of every file a run may change (and on
   localcodex's backups folder), in sorted order. The lock sits on the protected files' own folder, so two
   localcodex processes exclude each other whatever their data folders (another HOME, sudo, a second
   install); the OS drops it when a process dies, so a crash never leaves a stale lock.
2. The new content is computed from what is on disk *under the lock* (see `toml_edit` for how edits keep
   every other byte), compared, and only a real change goes further: no change, no backup, no write.
3. `commit()` refuses a read-only file (unless forced), saves a timestamped copy of each file it is about to
   change (or notes that the file did not exist), records the run in an index, then writes a journal beside
   the files naming every new content, then writes each file atomically (temp file in the same folder,
   fsync, `os.replace`, fsync of the folder), then deletes the journal. A kill at any moment leaves each
   file old or new; a kill between two files leaves the journal, and the next run that locks that folder
   finishes the change (so the files land together), before doing anything else.
4. `restore_last()` undoes the last recorded run: each file gets its old content back, or is deleted when it
   did not exist before; a file localcodex's write never reached is left as it is; a file changed by hand
   since then is only overwritten with `force`.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localcodex.adapters import toml_edit
from localcodex.domain.codex import layered, selected_provider
from localcodex.errors import ConfigError, NotFound

NEW_FILE_MODE = 0o600
LOCK_TIMEOUT = 10.0
MAX_RUNS_KEPT = 50
TEMP_MARK = ".localcodex-tmp-"
JOURNAL_NAME = ".localcodex-journal.json"
FOLDER_LOCK_NAME = ".localcodex.lock"  # only where a folder itself cannot be locked (Windows, some NFS)
_INDEX = "index.json"


# --------------------------------------------------------------------------------------------- reading


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist. Follows symlinks, as Codex does."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a file", f"move {path} out of the way") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", _permission_hint(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not valid UTF-8 (TOML files must be UTF-8)",
            f"re-save {path} as UTF-8 (localcodex changed nothing)",
        ) from None


def read_document(path: Path) -> Any:
    """The parsed TOMLDocument (empty when the file does not exist); malformed TOML → ConfigError with
    file, line and column. Reading never changes anything."""
    return toml_edit.parse(read_text(path) or "", path)


def read_data(path: Path) -> dict[str, Any]:
    """The file's plain values (empty when it does not exist), read with the fast parser; errors as above.
    The result may be shared with the edit that just checked the same text: read it, do not change it."""
    return toml_edit.load_plain(read_text(path) or "", path, shared=True)


@dataclass(frozen=True)
class Layer:
    """One config file Codex reads, in its layer order: what it is, where, and what it holds."""

    kind: str  # "system" | "user" | "profile" | "project"
    path: Path
    exists: bool
    data: dict[str, Any] | None = None  # plain values; None when missing or unreadable
    error: str | None = None  # why it could not be read (with line and column for TOML errors)
    note: str | None = None  # e.g. why Codex ignores part of it

    @property
    def ok(self) -> bool:
        return self.exists and self.error is None


# Keys Codex drops from a project-local `.codex/config.toml` (codex-config.md A5): a repository must not
# choose where a user's credentials go.
PROJECT_DENYLIST = (
    "openai_base_url", "chatgpt_base_url", "apps_mcp_product_sku", "model_provider", "model_providers",
    "notify", "profile", "profiles", "experimental_realtime_webrtc_call_base_url",
    "experimental_realtime_ws_base_url", "otel",
)


SYSTEM_CONFIG = Path("/etc/codex/config.toml")


def load_codex_layers(codex_home: Path, cwd: Path, profile: str | None = None,
                      system: Path | None = SYSTEM_CONFIG) -> list[Layer]:
    """The files Codex would read, lowest precedence first: the system file (listed only when it exists),
    `config.toml`, the profile file when one is selected, then every project `.codex/config.toml` from the
    project root down to `cwd`; `-c` overrides come last and are not files.

    The project root is the nearest folder above `cwd` holding `.git` (else `cwd` itself), as Codex finds
    it. Project layers apply only when the project is trusted, and never for provider settings.
    """
    layers = [_layer("system", system)] if system is not None and system.exists() else []
    layers.append(_layer("user", codex_home / "config.toml"))
    if profile:
        layers.append(_layer("profile", profile_path(codex_home, profile)))
    for folder in _project_folders(cwd):
        path = folder / ".codex" / "config.toml"
        if path.exists() and path.resolve() != (codex_home / "config.toml").resolve():
            layers.append(_layer("project", path))
    return layers


def _layer(kind: str, path: Path) -> Layer:
    note = None
    if kind == "project":
        note = "Codex uses it only in a trusted project, and ignores " + ", ".join(PROJECT_DENYLIST[:5]) + "… there"
    try:
        text = read_text(path)
        if text is None:
            return Layer(kind, path, exists=False, note=note)
        data = toml_edit.load_plain(text, path)
    except ConfigError as exc:
        return Layer(kind, path, exists=path.exists(), error=exc.message, note=note)
    return Layer(kind, path, exists=True, data=data, note=note)


def _project_folders(cwd: Path) -> list[Path]:
    cwd = cwd.resolve()
    root = next((p for p in (cwd, *cwd.parents) if (p / ".git").exists()), cwd)
    chain = [cwd]
    while chain[-1] != root and chain[-1].parent != chain[-1]:
        chain.append(chain[-1].parent)
    return list(reversed(chain))


def profile_path(codex_home: Path, profile: str) -> Path:
    return codex_home / f"{profile}.config.toml"


# --------------------------------------------------------------------------------------------- locking


@contextlib.contextmanager
def config_lock(lock_path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive OS lock on `lock_path` (created if needed) for the duration of the block.

    `fcntl.flock` on POSIX, `msvcrt.locking` on Windows; both are released by the OS if the process dies.
    Waits up to `timeout` seconds, then raises ConfigError naming the process that holds it.
    """
    _make_private_dir(lock_path.parent)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, NEW_FILE_MODE)
    except OSError as exc:
        raise ConfigError(f"cannot open lock file {lock_path}: {exc.strerror or exc}",
                          _permission_hint(lock_path)) from None
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
            _remove_stale_temps(folder)
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
        raise ConfigError(f"cannot open {folder}: {exc.strerror or exc}", _permission_hint(folder)) from None
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


# --------------------------------------------------------------------------------------------- writing


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
    _remove_stale_temps(folder, path.name)
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
    _fsync_dir(folder)


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


def _remove_stale_temps(folder: Path, name: str = "*") -> None:
    """Temp files of writers that are gone (their pid is in the name); a live writer's file is left alone,
    whichever data folder or lock that writer uses."""
    with contextlib.suppress(OSError):
        for leftover in folder.glob(f".{name}{TEMP_MARK}*"):
            pid = _temp_owner(leftover.name)
            if pid is not None and pid != os.getpid() and _alive(pid):
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


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.pid_exists(pid)
    except (OSError, ValueError):  # cannot tell: keep the file
        return True


def _fsync_dir(folder: Path) -> None:
    if sys.platform.startswith("win"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _delete(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _write_error(path, exc) from None
    _fsync_dir(path.parent)


def _write_error(path: Path, exc: OSError) -> ConfigError:
    reason = exc.strerror or str(exc)
    return ConfigError(f"cannot write {path}: {reason}", _permission_hint(path), code="config_write")


def _permission_hint(path: Path) -> str:
    return (
        f"check that you own {path.parent} and can write there (ls -ld '{path.parent}'); "
        "nothing was changed"
    )


def make_private_dir(folder: Path) -> None:
    """Create `folder` (and missing parents) 0700; ConfigError on failure."""
    _make_private_dir(folder)


def _make_private_dir(folder: Path) -> None:
    from localcodex.adapters.files import make_private_dir

    try:
        make_private_dir(folder)
    except OSError as exc:
        raise ConfigError(f"cannot create {folder}: {exc.strerror or exc}", _permission_hint(folder)) from None


# --------------------------------------------------------------------------------------------- changes


@dataclass(frozen=True)
class FileChange:
    """One file a command wants to change: its path as given, where the bytes land, old and new text."""

    path: Path
    target: Path
    old: str | None  # None: the file does not exist yet
    new: str | None  # None: delete the file (only `restore` does this)

    @property
    def changed(self) -> bool:
        return self.old != self.new

    @property
    def created(self) -> bool:
        return self.old is None and self.new is not None

    def diff(self) -> str:
        """A unified diff, as `--dry-run` prints it ('/dev/null' for a file that does not exist)."""
        if not self.changed:
            return ""
        old_name = str(self.path) if self.old is not None else "/dev/null"
        new_name = str(self.path) if self.new is not None else "/dev/null"
        lines = difflib.unified_diff(
            (self.old or "").splitlines(keepends=True),
            (self.new or "").splitlines(keepends=True),
            old_name, new_name,
        )
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def plan_change(path: Path, new: str) -> FileChange:
    """What writing `new` to `path` would change (reading the current content through any symlink)."""
    target = resolve_target(path)
    return FileChange(path=path, target=target, old=read_text(target), new=new)


def plan_edits(path: Path, edits: toml_edit.Edits, *, header: str = "") -> FileChange:
    """Apply TOML `edits` to the file at `path` in memory (nothing is written). A file that does not exist
    yet starts as `header` (a comment saying who wrote it)."""
    target = resolve_target(path)
    old = read_text(target)
    new = header + toml_edit.apply_edits("", edits, path) if old is None else toml_edit.apply_edits(old, edits, path)
    return FileChange(path=path, target=target, old=old, new=new)


@dataclass(frozen=True)
class BackupFile:
    path: str  # the file that was changed (resolved target)
    backup: str | None  # file name in the backups folder; None: the file did not exist before
    written_sha256: str | None  # what localcodex left there (None: it deleted the file)


@dataclass(frozen=True)
class BackupRun:
    id: str
    time: str
    command: str
    files: tuple[BackupFile, ...] = field(default_factory=tuple)


def _sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


class BackupStore:
    """Timestamped copies of the files localcodex changed, and an index of runs to undo them in order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def index_path(self) -> Path:
        return self.folder / _INDEX

    def ensure(self) -> BackupStore:
        """Create the (private) folder, so it can be locked before the first backup."""
        _make_private_dir(self.folder)
        return self

    def runs(self) -> list[BackupRun]:
        text = read_text(self.index_path)
        if not text:
            return []
        try:
            raw = json.loads(text)
            return [
                BackupRun(r["id"], r["time"], r.get("command", ""), tuple(BackupFile(**f) for f in r["files"]))
                for r in raw.get("runs", [])
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{self.index_path} is damaged ({exc})",
                f"move {self.index_path} away; the backup copies next to it are still usable by hand",
            ) from None

    def _save(self, runs: Sequence[BackupRun]) -> None:
        from localcodex.domain.envelope import to_jsonable

        doc = {"version": 1, "runs": [to_jsonable(r) for r in runs[-MAX_RUNS_KEPT:]]}
        write_atomic(self.index_path, json.dumps(doc, indent=2) + "\n")
        keep = {f.backup for r in runs[-MAX_RUNS_KEPT:] for f in r.files if f.backup}
        for old in runs[:-MAX_RUNS_KEPT]:
            for f in old.files:
                if f.backup and f.backup not in keep:
                    with contextlib.suppress(OSError):
                        (self.folder / f.backup).unlink()

    def record(self, command: str, changes: Sequence[FileChange]) -> BackupRun:
        """Copy the current content of each file about to change, and add the run to the index."""
        _make_private_dir(self.folder)
        now = datetime.now(timezone.utc)
        run_id = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond:06d}Z"
        files = []
        for n, change in enumerate(changes):
            name = None
            if change.old is not None:
                name = f"{run_id}-{n}-{change.target.name}"
                write_atomic(self.folder / name, change.old)
            files.append(BackupFile(str(change.target), name, _sha(change.new)))
        run = BackupRun(run_id, now.isoformat(timespec="seconds"), command, tuple(files))
        self._save([*self.runs(), run])
        return run

    def drop_last(self) -> None:
        self._save(self.runs()[:-1])

    def last(self) -> BackupRun:
        runs = self.runs()
        if not runs:
            raise NotFound(
                f"no localcodex backup to restore in {self.folder}",
                "localcodex has not changed any Codex file yet (or every change was already restored)",
            )
        return runs[-1]

    def content(self, f: BackupFile) -> str | None:
        if f.backup is None:
            return None
        text = read_text(self.folder / f.backup)
        if text is None:
            raise ConfigError(f"backup copy {self.folder / f.backup} is missing", "restore that file by hand")
        return text


@dataclass(frozen=True)
class Commit:
    changes: tuple[FileChange, ...]
    backup: BackupRun | None


def check_writable(changes: Sequence[FileChange], *, force: bool = False) -> None:
    """A file its owner made read-only (0444) is a statement: it is refused unless `force`."""
    for change in changes:
        if not change.changed or change.old is None or force:
            continue
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(change.target.stat().st_mode)
            if not mode & stat.S_IWUSR:
                raise ConfigError(
                    f"{change.target} is read-only (mode {mode:04o}); localcodex changed nothing",
                    f"make it writable (chmod u+w '{change.target}'), or pass --force to replace it anyway",
                    code="config_read_only",
                )


def commit(command: str, changes: Sequence[FileChange], store: BackupStore, *, force: bool = False) -> Commit:
    """Back up, then write every changed file, all of them or none (see the module's docstring: a journal
    covers a kill between two files; a failing write puts the earlier ones back). The caller holds
    `locked()` on every file's folder and on the store's."""
    todo = [c for c in changes if c.changed]
    if not todo:
        return Commit(tuple(changes), None)
    check_writable(todo, force=force)
    run = store.record(command, todo)
    try:
        apply_all(todo)
    except ConfigError:
        with contextlib.suppress(ConfigError):
            store.drop_last()
        raise
    return Commit(tuple(changes), run)


def apply_all(todo: Sequence[FileChange]) -> None:
    """Write every change under a journal: all land, or (on an error) none; after a kill, `recover` ends it."""
    if not todo:
        return
    journal = _journal_path(todo)
    if len(todo) > 1:
        _write_journal(journal, todo)
    done: list[FileChange] = []
    try:
        for change in todo:
            _apply(change)
            done.append(change)
    except ConfigError:
        for change in reversed(done):
            with contextlib.suppress(ConfigError):
                _apply(FileChange(change.path, change.target, change.new, change.old))
        with contextlib.suppress(ConfigError):
            _delete(journal)
        raise
    if len(todo) > 1:
        _delete(journal)


def _journal_path(todo: Sequence[FileChange]) -> Path:
    return sorted((c.target.parent.resolve() for c in todo), key=str)[0] / JOURNAL_NAME


def _write_journal(journal: Path, todo: Sequence[FileChange]) -> None:
    doc = {
        "version": 1,
        "pid": os.getpid(),
        "files": [{"target": str(c.target.resolve()), "old_sha256": _sha(c.old), "new_sha256": _sha(c.new),
                   "new": c.new} for c in todo],
    }
    write_atomic(journal, json.dumps(doc) + "\n")


def recover(folder: Path, *, held: Sequence[Path]) -> list[str]:
    """Finish the change a killed run left in `folder`'s journal: every file still holding its old content
    gets the new one, so the files it covers are in step again. A file changed by other hands meanwhile is
    left alone (and named). Runs only when the caller holds the lock of every folder the journal names."""
    journal = folder / JOURNAL_NAME
    text = read_text(journal)
    if text is None:
        return []
    try:
        files = json.loads(text)["files"]
        entries = [(Path(f["target"]), f["old_sha256"], f["new_sha256"], f["new"]) for f in files]
    except (ValueError, KeyError, TypeError):
        _delete(journal)
        return [f"removed a damaged localcodex journal in {folder}"]
    held_set = {Path(h) for h in held}
    if any(target.parent.resolve() not in held_set for target, *_ in entries):
        return []  # another run, holding those folders too, will finish it
    finished, skipped = [], []
    for target, old_sha, new_sha, new in entries:
        current = _sha(read_text(target))
        if current == new_sha:
            continue
        if current != old_sha:
            skipped.append(str(target))
            continue
        _apply(FileChange(target, target, None, new))
        finished.append(str(target))
    _delete(journal)
    notes = [f"finished a change an interrupted localcodex run left half done: {', '.join(finished)}"] if finished \
        else []
    if skipped:
        notes.append(f"an interrupted localcodex run could not be finished for {', '.join(skipped)} (changed since)")
    return notes


def _apply(change: FileChange) -> None:
    if change.new is None:
        _delete(change.target)
    else:
        write_atomic(change.target, change.new)


@dataclass(frozen=True)
class Restored:
    run: BackupRun
    changes: tuple[FileChange, ...]


def restore_last(store: BackupStore, *, force: bool = False, dry_run: bool = False) -> Restored:
    """Undo the last recorded run: exactly what it wrote. A file that still holds what it held before the run
    (the run was killed before writing it) needs nothing; a file edited since localcodex wrote it is left
    alone unless `force`."""
    run = store.last()
    changes = []
    for f in run.files:
        target = Path(f.path)
        current = read_text(target)
        before = store.content(f)
        if current == before:
            changes.append(FileChange(target, target, current, current))
            continue
        if not force and _sha(current) != f.written_sha256:
            raise ConfigError(
                f"{target} changed since localcodex wrote it on {run.time}; restoring would discard those edits",
                "look at it first; pass --force to restore anyway",
                code="config_changed",
            )
        changes.append(FileChange(target, target, current, before))
    if not dry_run:
        apply_all([c for c in changes if c.changed])
        store.drop_last()
    return Restored(run, tuple(changes))


@dataclass(frozen=True)
class ProfileInfo:
    model: str | None
    provider: str | None
    base_url: str | None


def read_profile(codex_home: Path, profile: str) -> ProfileInfo:
    """Model, provider and base_url as Codex would resolve them for `-p PROFILE`; NotFound without a profile.

    A profile is `$CODEX_HOME/PROFILE.config.toml` (Codex 0.134 and later) or, for older Codex, a
    `[profiles.PROFILE]` table in config.toml; values it lacks come from config.toml.
    """
    user, profile_file = load_codex_layers(codex_home, codex_home, profile)[:2]
    for layer in (user, profile_file):
        if layer.error:
            raise NotFound(f"the Codex profile `{profile}` cannot be read: {layer.error}",
                           f"fix {layer.path}, or run `localcodex configure --profile {profile}` to rewrite it",
                           code="profile_unreadable")
    base = dict(user.data or {})
    legacy = (base.get("profiles") or {}).get(profile)
    if not profile_file.exists and not isinstance(legacy, Mapping):
        raise NotFound(f"no Codex profile `{profile}` ({profile_file.path} does not exist)",
                       f"run `localcodex configure --profile {profile}` first", code="profile_missing")
    layers = [("user", base), ("profile", legacy if isinstance(legacy, Mapping) else {}),
              ("profile", profile_file.data or {})]
    return ProfileInfo(*selected_provider(layered(layers)))

"""What a localcodex run changes in Codex's files, and how it is made all-or-nothing and undoable.

1. A plan (`plan_change`, `plan_edits`) is computed from what is on disk *under the lock* (see `toml_edit` for
   how edits keep every other byte); only a real change goes further: no change, no backup, no write.
2. `commit()` refuses a read-only file (unless forced), saves a timestamped copy of each file it is about to
   change (or notes that the file did not exist), records the run in an index, then writes a journal beside
   the files naming every new content, then writes each file (`codex_write.write_atomic`), then deletes the
   journal. A kill at any moment leaves each file old or new; a kill between two files leaves the journal,
   and the next run that locks that folder finishes the change (`recover`), before doing anything else.
3. `restore_last()` undoes the last recorded run: each file gets its old content back, or is deleted when it
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from localcodex.adapters import toml_edit
from localcodex.adapters.codex_config import read_text
from localcodex.adapters.codex_write import delete, make_private_dir, pid_alive, resolve_target, write_atomic
from localcodex.errors import ConfigError, NotFound

MAX_RUNS_KEPT = 50
JOURNAL_NAME = ".localcodex-journal.json"
_INDEX = "index.json"


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
        make_private_dir(self.folder)
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
        make_private_dir(self.folder)
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
            delete(journal)
        raise
    if len(todo) > 1:
        delete(journal)


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


@dataclass(frozen=True)
class PendingChange:
    """A journal a localcodex run left in a folder (read only: `recover` finishes it under the lock).

    `files` maps each file the change covers to its state now: "new" (written), "old" (the write never reached
    it: out of step with the others), "changed" (neither: edited since). `running`: the process that wrote the
    journal is still alive, so the change may just be in progress. `damaged`: the journal cannot be read.
    """

    journal: Path
    files: tuple[tuple[Path, str], ...] = ()
    running: bool = False
    damaged: bool = False

    @property
    def out_of_step(self) -> tuple[Path, ...]:
        return tuple(path for path, state in self.files if state == "old")


def pending_change(folder: Path) -> PendingChange | None:
    """The change a killed run left half done in `folder` (None when there is no journal). Reads, never writes."""
    journal = folder / JOURNAL_NAME
    try:
        text = read_text(journal)
    except ConfigError:
        return PendingChange(journal, damaged=True)
    if text is None:
        return None
    try:
        doc = json.loads(text)
        entries = [(Path(f["target"]), f["old_sha256"], f["new_sha256"]) for f in doc["files"]]
        pid = doc.get("pid")
    except (ValueError, KeyError, TypeError):
        return PendingChange(journal, damaged=True)
    states = []
    for target, old_sha, new_sha in entries:
        try:
            current = _sha(read_text(target))
        except ConfigError:
            current = "unreadable"
        states.append((target, "new" if current == new_sha else "old" if current == old_sha else "changed"))
    running = isinstance(pid, int) and pid != os.getpid() and pid_alive(pid)
    return PendingChange(journal, tuple(states), running=running)


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
        delete(journal)
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
    delete(journal)
    notes = [f"finished a change an interrupted localcodex run left half done: {', '.join(finished)}"] if finished \
        else []
    if skipped:
        notes.append(f"an interrupted localcodex run could not be finished for {', '.join(skipped)} (changed since)")
    return notes


def _apply(change: FileChange) -> None:
    if change.new is None:
        delete(change.target)
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


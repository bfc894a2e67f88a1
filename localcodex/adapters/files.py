"""Small files localcodex writes for itself (state, caches, exports): whole or not at all, and private
(folders 0700, files 0600: receipts and state can name hosts, models and paths a user keeps to themselves).

Codex's own config files have a stricter writer (mode and owner kept, crash-test seams, lock, backups) in
`codex_write.write_atomic`; this one is for files that belong to localcodex or to an explicit `--out`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from localcodex.errors import ConfigError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(folder: Path) -> None:
    """Create `folder` and any missing parents as 0700 (whatever the umask); an existing folder is left as
    it is. OSError on failure."""
    folder = Path(folder)
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    for created in missing:
        with contextlib.suppress(OSError):
            os.chmod(created, PRIVATE_DIR_MODE)


def create_private_file(path: Path) -> None:
    """Make sure `path` exists and, if this call created it, is 0600 (for files other code then opens,
    such as a SQLite database)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))


def write_text_atomic(path: Path, text: str, *, hint: str = "check that the folder exists and is writable") -> None:
    """Write a whole file or nothing (temp file in the same folder, then rename); ConfigError on failure."""
    path = Path(path)
    tmp: str | None = None
    try:
        make_private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise ConfigError(f"cannot write {path}: {exc}", hint) from exc

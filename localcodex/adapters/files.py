"""Small files localcodex writes for itself (state, caches, exports): whole or not at all.

Codex's own config files have a stricter writer (mode and owner kept, crash-test seams, lock, backups) in
`codex_config.write_atomic`; this one is for files that belong to localcodex or to an explicit `--out`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from localcodex.errors import ConfigError


def write_text_atomic(path: Path, text: str, *, hint: str = "check that the folder exists and is writable") -> None:
    """Write a whole file or nothing (temp file in the same folder, then rename); ConfigError on failure."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise ConfigError(f"cannot write {path}: {exc}", hint) from exc

"""Read-only access to what Codex reads, for `doctor`: config files (with key lines and parse errors), the
list of profile files and project-local files, and the installed Codex version.

Parse errors are returned, not raised: one malformed file must not stop the examination of the others.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from localcodex.core.doctor import PROFILE_NAME, ConfigFile
from localcodex.core.toml_lines import key_lines

PROFILE_SUFFIX = ".config.toml"


def read_config(path: Path, kind: str, profile: str | None = None) -> ConfigFile:
    """One config file, parsed. A malformed one comes back with `data=None` and the error's line and column."""
    import tomlkit
    from tomlkit.exceptions import ParseError, TOMLKitError

    base = ConfigFile(path=path, kind=kind, profile=profile)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _replace(base, error=f"cannot be read: {exc}")
    try:
        data = tomlkit.parse(text).unwrap()
    except ParseError as exc:
        # tomlkit counts columns from 0; Codex and editors from 1
        return _replace(base, error=_parse_message(exc), error_line=exc.line, error_column=exc.col + 1)
    except TOMLKitError as exc:  # e.g. a key defined twice
        return _replace(base, error=str(exc))
    return _replace(base, data=data, lines=key_lines(text))


def _parse_message(exc: Exception) -> str:
    """tomlkit's message without its own " at line L col C" tail (doctor says where in its own words)."""
    return re.sub(r"\s+at line \d+ col \d+$", "", str(exc))


def _replace(base: ConfigFile, **changes: object) -> ConfigFile:
    from dataclasses import replace

    return replace(base, **changes)


def profile_files(codex_home: Path) -> Iterator[tuple[str, Path]]:
    """`(name, path)` of every `NAME.config.toml` that `codex -p NAME` can select (plain names only)."""
    try:
        entries = sorted(codex_home.iterdir())
    except OSError:
        return
    for path in entries:
        name = path.name[: -len(PROFILE_SUFFIX)] if path.name.endswith(PROFILE_SUFFIX) else ""
        if name and PROFILE_NAME.match(name) and path.is_file():
            yield name, path


def project_root(cwd: Path) -> Path:
    """The nearest folder holding `.git` (Codex's default project marker), else the cwd itself."""
    for folder in (cwd, *cwd.parents):
        if (folder / ".git").exists():
            return folder
    return cwd


def project_files(cwd: Path) -> list[Path]:
    """Every `.codex/config.toml` from the project root down to the cwd (the order Codex layers them)."""
    root = project_root(cwd)
    folders = [cwd, *cwd.parents]
    chain = list(reversed(folders[: folders.index(root) + 1]))
    return [f / ".codex" / "config.toml" for f in chain if (f / ".codex" / "config.toml").is_file()]


def codex_version(env: Mapping[str, str], timeout: float = 10.0) -> tuple[bool, str | None]:
    """(installed, version text) of the `codex` on this environment's PATH."""
    exe = shutil.which("codex", path=env.get("PATH"))
    if exe is None:
        return False, None
    try:
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=dict(env))
    except (OSError, subprocess.SubprocessError):
        return True, None
    match = re.search(r"\d+\.\d+\.\d+\S*", proc.stdout or "")
    return True, match.group(0) if match else None

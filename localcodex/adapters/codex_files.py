"""Read-only access to what Codex reads, for `doctor`, on top of `codex_config` and `codex_cli` (configure's
readers): config files with key lines and parse errors, every profile file, the project-local files in Codex's
layer order, and the installed Codex version.

Parse errors are returned, not raised: one malformed file must not stop the examination of the others.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from localcodex.domain.codex import PROFILE_NAME
from localcodex.domain.toml_lines import KeyPath, key_lines
from localcodex.errors import CodexMissing, ConfigError

PROFILE_SUFFIX = ".config.toml"


@dataclass(frozen=True)
class ParsedConfig:
    """One config file as read: its data (None when missing or malformed), key lines, and the parse error."""

    path: Path
    kind: str  # "user" | "profile" | "project"
    profile: str | None = None
    data: Mapping[str, Any] | None = None
    lines: Mapping[KeyPath, int] = field(default_factory=dict)
    error: str | None = None
    error_line: int | None = None
    error_column: int | None = None


def read_config(path: Path, kind: str, profile: str | None = None) -> ParsedConfig:
    """One config file, parsed. A malformed one comes back with `data=None` and the error's line and column."""
    from localcodex.adapters import codex_config, toml_edit

    base = ParsedConfig(path=path, kind=kind, profile=profile)
    try:
        text = codex_config.read_text(path) or ""
        data = toml_edit.load_plain(text, path)
    except ConfigError as exc:
        return _with_error(base, exc)
    return replace(base, data=data, lines=key_lines(text))


def _with_error(base: ParsedConfig, exc: ConfigError) -> ParsedConfig:
    where = exc.data if isinstance(exc.data, Mapping) else {}
    line, column = where.get("line"), where.get("column")
    reason = exc.message.split("invalid TOML: ", 1)[-1]
    # tomlkit counts columns from 0; Codex and editors count from 1
    return replace(base, error=reason, error_line=line, error_column=column + 1 if isinstance(column, int) else None)


def user_and_project_files(codex_home: Path, cwd: Path) -> tuple[Path | None, list[Path]]:
    """`config.toml` (None when absent) and the project-local files from the project root down to the cwd."""
    from localcodex.adapters.codex_config import load_codex_layers

    layers = load_codex_layers(codex_home, cwd)
    user = next((layer.path for layer in layers if layer.kind == "user" and layer.exists), None)
    return user, [layer.path for layer in layers if layer.kind == "project"]


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


def codex_version(env: Mapping[str, str]) -> tuple[bool, str | None]:
    """(installed, version) of the `codex` on this environment's PATH; version None when it cannot be read."""
    from localcodex.adapters.codex_cli import codex_info

    try:
        info = codex_info(env=env)
    except CodexMissing:
        return True, None  # on PATH but `codex --version` fails: a broken install
    if info is None:
        return False, None
    return True, info.version_str if info.version else None

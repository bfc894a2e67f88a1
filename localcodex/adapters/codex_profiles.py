"""Read-only look at Codex profile files (`$CODEX_HOME/<name>.config.toml`, Codex ≥ 0.134 "profile v2").

`check` uses it to find the model of the `local_ollama` profile when `--model` is not given. Writing profiles
belongs to `configure`; this module never writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def profile_path(codex_home: Path, name: str) -> Path:
    return codex_home / f"{name}.config.toml"


def read_profile(codex_home: Path, name: str) -> dict[str, Any] | None:
    """The profile's top-level table, or None when the file is missing or is not valid TOML."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    path = profile_path(codex_home, name)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError, UnicodeDecodeError):
        return None
    try:
        return tomlkit.parse(text).unwrap()
    except TOMLKitError:
        return None


def profile_model(codex_home: Path, name: str) -> str | None:
    """The `model = "…"` of a profile, if the profile exists and sets one."""
    table = read_profile(codex_home, name) or {}
    model = table.get("model")
    return model.strip() if isinstance(model, str) and model.strip() else None

"""Codex's TOML files on disk, read the way Codex layers them: the user config, profile files, project files.

Changing them safely is the job of three neighbours, each one step of a write:
`codex_lock` (an OS lock on the folder of every file a run may change, and recovery of a change a killed run
left half done), `codex_changes` (what a run changes: plans, backups, the journal that keeps two files in step,
restore) and `codex_write` (one file replaced atomically, its mode kept, leftovers of killed writers swept).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcodex.adapters import toml_edit
from localcodex.domain.codex import PROJECT_DENYLIST, layered, selected_provider
from localcodex.errors import ConfigError, NotFound

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
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", permission_hint(path)) from None
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



def permission_hint(path: Path) -> str:
    """The fix for a file or folder localcodex cannot read or write."""
    return (
        f"check that you own {path.parent} and can write there (ls -ld '{path.parent}'); "
        "nothing was changed"
    )


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

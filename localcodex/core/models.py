"""What is installed: `localcodex models list`, one row per model with what matters for Codex."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcodex.adapters.ollama import OllamaServer
from localcodex.core.ports import Live
from localcodex.errors import LocalcodexError, NotFound


@dataclass(frozen=True)
class ModelRow:
    name: str
    size: int
    digest: str
    modified_at: str
    num_ctx: int | None  # the context the model carries (PARAMETER num_ctx); None = the server's default
    trained_context: int | None
    capabilities: tuple[str, ...]
    quantization: str | None
    parameter_size: str | None
    family: str | None
    profiles: tuple[str, ...] = ()  # the Codex profiles that use this model ("(default)": config.toml)

    @property
    def codex_ready(self) -> bool:
        """Usable by Codex as is: it calls tools and carries a context of its own."""
        return "tools" in self.capabilities and bool(self.num_ctx)


def list_models(server: OllamaServer, codex_home: Path | None = None) -> tuple[ModelRow, ...]:
    """Every installed model, with `/api/show` details (one request per model, in `/api/tags` order) and
    the Codex profiles that use it."""
    from localcodex.adapters.ollama import normalize_name

    users = profile_models(codex_home) if codex_home is not None else {}
    rows = []
    for model in server.list():
        try:
            details = server.show(model.name)
        except NotFound:  # deleted between the two requests
            continue
        rows.append(ModelRow(
            name=model.name, size=model.size, digest=model.digest, modified_at=model.modified_at,
            num_ctx=details.num_ctx, trained_context=details.context_length, capabilities=details.capabilities,
            quantization=details.quantization_level or model.quantization_level,
            parameter_size=details.parameter_size or model.parameter_size, family=details.family or model.family,
            profiles=users.get(normalize_name(model.name), ()),
        ))
    return tuple(rows)


def profile_models(codex_home: Path) -> dict[str, tuple[str, ...]]:
    """Model name → the Codex profiles that use it (`NAME.config.toml` files, `[profiles.NAME]` tables of
    config.toml, and config.toml's own default as "(default)"). Unreadable files are skipped: this only
    decides what to mark, and what not to delete."""
    from localcodex.adapters.codex_files import profile_files
    from localcodex.adapters.ollama import normalize_name

    users: dict[str, list[str]] = {}

    def add(model: Any, profile: str) -> None:
        if isinstance(model, str) and model:
            users.setdefault(normalize_name(model), []).append(profile)

    config = _document(codex_home / "config.toml")
    add(config.get("model"), "(default)")
    legacy = config.get("profiles")
    for name, table in (legacy.items() if isinstance(legacy, Mapping) else ()):
        if isinstance(table, Mapping):
            add(table.get("model") or config.get("model"), str(name))
    for name, path in profile_files(codex_home):
        add(_document(path).get("model") or config.get("model"), name)
    return {model: tuple(dict.fromkeys(names)) for model, names in users.items()}


def _document(path: Path) -> Mapping[str, Any]:
    from localcodex.adapters.codex_config import read_document

    try:
        doc = read_document(path)
    except (LocalcodexError, OSError):
        return {}
    return doc if isinstance(doc, Mapping) else {}


@dataclass(frozen=True)
class PruneResult:
    removed: tuple[str, ...]  # with dry_run: what would be removed
    kept: tuple[tuple[str, str], ...]  # (variant, why it stays)
    dry_run: bool


def prunable(server: OllamaServer, live: Live) -> PruneResult:
    """The context variants localcodex made (`NAME-ctxNk` carrying that num_ctx, or recorded by setup) that
    no Codex profile uses; the rest of the variants with the reason they stay. Nothing is removed."""
    from localcodex.core.variant import base_of, ctx_label

    made = set(live.setup_state().created_variants(server.host.native))
    users = profile_models(live.inv.codex_home)
    removable, kept = [], []
    for row in list_models(server, live.inv.codex_home):
        if base_of(row.name) == row.name:
            continue
        ours = row.name in made or (row.num_ctx is not None and row.name.endswith(f"-ctx{ctx_label(row.num_ctx)}"))
        if not ours:
            kept.append((row.name, "not made by localcodex"))
        elif users.get(row.name):
            kept.append((row.name, "used by " + ", ".join(users[row.name])))
        else:
            removable.append(row.name)
    return PruneResult(tuple(removable), tuple(kept), dry_run=True)


def prune(server: OllamaServer, result: PruneResult, live: Live) -> PruneResult:
    """Remove what `prunable` found (weights shared with the base model stay)."""
    for name in result.removed:
        with contextlib.suppress(NotFound):  # already gone
            server.delete(name)
    live.setup_state().forget_variants(server.host.native, set(result.removed))
    return PruneResult(result.removed, result.kept, dry_run=False)

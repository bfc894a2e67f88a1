"""`--model-catalog`: `<profile>.model-catalog.json` with the real context window, and the system prompt it
carries (`--instructions FILE`, else Codex's own, captured once per Codex version)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from localcodex.core.configure.model import ModelFacts
from localcodex.core.configure.types import CATALOG_SUFFIX, ConfigureRequest, Progress
from localcodex.errors import LocalcodexError, UsageError


def catalog_entry(model: str, context: int, instructions: str) -> dict[str, Any]:
    """The smallest ModelInfo entry Codex 0.169 accepts (codex-config.md A6), with the real window."""
    return {
        "slug": model,
        "display_name": f"{model} (local)",
        "context_window": context,
        "supported_reasoning_levels": [],
        "shell_type": "shell_command",
        "visibility": "list",
        "supported_in_api": True,
        "priority": 1,
        "support_verbosity": False,
        "truncation_policy": {"mode": "tokens", "limit": 10000},
        "experimental_supported_tools": [],
        "base_instructions": instructions,
    }


def _catalog_text(model: str, context: int | None, instructions: str) -> str:
    if not context:
        raise UsageError("--model-catalog needs the context window", "pass --context N")
    return json.dumps({"models": [catalog_entry(model, context, instructions)]}, indent=2) + "\n"


def _instructions(req: ConfigureRequest, codex: Any, on_progress: Progress) -> tuple[str, str]:
    """The catalog's system prompt and where it came from: --instructions FILE, else Codex's own default
    prompt (captured once per Codex version and cached), so the model sees what it would without a catalog."""
    if req.instructions_file:
        from localcodex.adapters.codex_config import read_text

        text = read_text(req.instructions_file)
        if not text or not text.strip():
            raise UsageError(f"{req.instructions_file} is empty or missing", "give a file with a system prompt")
        return text, str(req.instructions_file)
    if codex is None or codex.version is None:
        raise UsageError(
            "--model-catalog needs a system prompt for the model, and Codex is not installed to take its own",
            "install Codex, or pass --instructions FILE (an empty prompt would leave the model without one)",
        )
    from localcodex.adapters import codex_cli
    from localcodex.paths import data_dir

    cache = data_dir() / "codex-prompts" / f"{codex.version_str}.txt"
    if cache.is_file():
        return cache.read_text(encoding="utf-8"), f"Codex {codex.version_str} default prompt"
    on_progress(f"reading Codex {codex.version_str}'s default prompt (once per version)")
    text = codex_cli.capture_base_instructions(codex.path)
    from localcodex.adapters.codex_write import make_private_dir, write_atomic

    make_private_dir(cache.parent)

    write_atomic(cache, text)
    return text, f"Codex {codex.version_str} default prompt"


def catalog_file(req: ConfigureRequest, codex: Any, facts: ModelFacts, codex_home: Path,
             progress: Progress) -> tuple[Path, str, str] | None:
    """(path, JSON text, warning) of the model catalog, when asked for (or kept)."""
    if req.model_catalog is None and not _has_catalog(codex_home, req.profile):
        return None
    if req.model_catalog is False:
        return None
    kept = _kept_instructions(codex_home, req.profile) if req.model_catalog is None else None
    instructions, source = kept or _instructions(req, codex, progress)
    text = _catalog_text(facts.model, facts.context, instructions)
    warning = (f"the model catalog replaces Codex's built-in model list for `codex -p {req.profile}` "
               f"(system prompt: {source})")
    return codex_home / f"{req.profile}{CATALOG_SUFFIX}", text, warning


def _kept_instructions(codex_home: Path, profile: str) -> tuple[str, str] | None:
    """The system prompt of the catalog the profile has now, so keeping the catalog keeps its prompt too."""
    path = codex_home / f"{profile}{CATALOG_SUFFIX}"
    try:
        models = json.loads(path.read_text(encoding="utf-8")).get("models") or []
        text = models[0].get("base_instructions")
    except (OSError, ValueError, AttributeError, IndexError):
        return None
    return (text, f"kept from {path.name}") if isinstance(text, str) and text.strip() else None


def _has_catalog(codex_home: Path, profile: str) -> bool:
    """Whether the profile file points at a model catalog now (unreadable: no; the write reports why)."""
    from localcodex.adapters import codex_config

    try:
        doc = codex_config.read_document(codex_config.profile_path(codex_home, profile))
    except LocalcodexError:
        return False
    return bool(doc.get("model_catalog_json"))

"""The keys configure writes: the session keys of a profile, the `[model_providers.<id>]` table, the legacy
`[profiles.NAME]` form for Codex older than 0.134 (what each key is for: the package's docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localcodex.core.configure.model import ModelFacts
from localcodex.core.configure.types import (
    AUTO_COMPACT_RATIO,
    DEFAULT_PROVIDER_NAME,
    REQUEST_MAX_RETRIES,
    STREAM_MAX_RETRIES,
    ConfigureRequest,
)
from localcodex.domain.urls import locality


def is_local_url(url: str) -> bool:
    """Loopback or private network (domain.urls.locality): a server that is down will not come back by waiting,
    so the profile gets fail-fast retries.

    >>> is_local_url("http://127.0.0.1:11434/v1"), is_local_url("http://192.168.1.20:8080/v1")
    (True, True)
    >>> is_local_url("https://openrouter.ai/api/v1")
    False
    """
    return locality(url).on_local_network


def provider_table(req: ConfigureRequest, base_url: str) -> dict[str, Any]:
    """The `[model_providers.<id>]` keys localcodex owns (None = remove the key if present).

    A local server gets few retries: its errors are rarely transient. A hosted one keeps Codex's defaults
    (keys absent), which ride out rate limits and blips."""
    local = is_local_url(base_url)
    table: dict[str, Any] = {
        "name": req.provider_name or (DEFAULT_PROVIDER_NAME if not req.base_url else req.provider_id),
        "base_url": base_url,
        "wire_api": "responses",
        "env_key": req.env_key,
        "http_headers": dict(req.http_headers) or None,
        "env_http_headers": dict(req.env_http_headers) or None,
        "query_params": dict(req.query_params) or None,
        "stream_idle_timeout_ms": req.stream_idle_timeout_ms,
        "request_max_retries": REQUEST_MAX_RETRIES if local else None,
        "stream_max_retries": STREAM_MAX_RETRIES if local else None,
    }
    table.update(dict(req.provider_extra))
    return table


def session_keys(model: str, provider_id: str, context: int | None, local: bool) -> dict[tuple[str, ...], Any]:
    """Top-level keys of a session (shared by the profile file and `--default`). Fail-fast connection
    retries only for a local server: for a hosted one, waiting out a network blip is the right call."""
    return {
        ("model",): model,
        ("model_provider",): provider_id,
        ("model_context_window",): context,
        ("model_auto_compact_token_limit",): auto_compact_limit(context),
        ("web_search",): "disabled",
        ("agents", "enabled"): False,
        ("features", "unbounded_connection_retries"): False if local else None,
    }


def auto_compact_limit(context: int | None) -> int | None:
    """90 % of the window: Codex compacts before the server would cut the prompt.

    >>> auto_compact_limit(32768)
    29491
    """
    return int(context * AUTO_COMPACT_RATIO) if context else None


def provider_edits(provider_id: str, table: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
    return {("model_providers", provider_id, key): value for key, value in table.items()}


def profile_edits(req: ConfigureRequest, facts: ModelFacts, base_url: str,
                   catalog: Path | None) -> dict[tuple[str, ...], Any]:
    edits = session_keys(facts.model, req.provider_id, facts.context, is_local_url(base_url))
    edits[("model_catalog_json",)] = str(catalog) if catalog else None
    edits.update({(k,): v for k, v in req.extra_profile_keys})
    edits.update(provider_edits(req.provider_id, provider_table(req, base_url)))
    return edits


def legacy_edits(req: ConfigureRequest, facts: ModelFacts, base_url: str,
                  catalog: Path | None) -> dict[tuple[str, ...], Any]:
    """Codex < 0.134: `[profiles.NAME]` in config.toml. Such a table only takes the keys of Codex's
    ConfigProfile (model, model_provider, web_search, model_catalog_json…); provider tables stay top-level."""
    p = ("profiles", req.profile)
    edits: dict[tuple[str, ...], Any] = {
        (*p, "model"): facts.model,
        (*p, "model_provider"): req.provider_id,
        (*p, "web_search"): "disabled",
        (*p, "model_catalog_json"): str(catalog) if catalog else None,
    }
    edits.update(provider_edits(req.provider_id, provider_table(req, base_url)))
    return edits


def profile_header(req: ConfigureRequest) -> str:
    return (
        f"# Codex profile written by `localcodex {req.command}`. Use it with: codex -p {req.profile}\n"
        "# Running localcodex again updates only the keys it wrote; your comments and other keys stay.\n\n"
    )

"""configure's request and results, and the defaults it writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PROFILE = "local_ollama"
DEFAULT_PROVIDER_ID = "local_ollama"
DEFAULT_PROVIDER_NAME = "Ollama (localcodex)"
DEFAULT_STREAM_IDLE_TIMEOUT_MS = 600_000  # Codex's default is 300000; a big prompt on a CPU can take longer
REQUEST_MAX_RETRIES = 1  # Codex default 4 (×6 stream attempts = 30 requests on a 500)
STREAM_MAX_RETRIES = 2  # Codex default 5
AUTO_COMPACT_RATIO = 0.9
CATALOG_SUFFIX = ".model-catalog.json"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ConfigureRequest:
    """What to write. Only `model` is needed in practice; everything else has a sensible default."""

    model: str | None = None  # required unless Ollama has exactly one model installed
    context: int | None = None  # the server's context window (num_ctx); read from Ollama when omitted
    host: str | None = None  # Ollama host (as OLLAMA_HOST takes it); default $OLLAMA_HOST / 127.0.0.1:11434
    base_url: str | None = None  # any OpenAI-compatible server instead of Ollama (must serve /responses)
    profile: str = DEFAULT_PROFILE
    provider_id: str = DEFAULT_PROVIDER_ID
    provider_name: str | None = None
    env_key: str | None = None  # NAME of the variable holding the API key, never the key
    http_headers: tuple[tuple[str, str], ...] = ()  # static, non-secret headers
    env_http_headers: tuple[tuple[str, str], ...] = ()  # header name → NAME of the variable with its value
    query_params: tuple[tuple[str, str], ...] = ()
    provider_extra: tuple[tuple[str, Any], ...] = ()  # further [model_providers.<id>] keys (templates)
    model_catalog: bool | None = False  # None: keep the catalog the profile has (setup writes one), if any
    instructions_file: Path | None = None  # system prompt for the catalog entry (default: Codex's own)
    make_default: bool = False
    dry_run: bool = False
    stream_idle_timeout_ms: int = DEFAULT_STREAM_IDLE_TIMEOUT_MS
    codex_home: Path | None = None  # default $CODEX_HOME or ~/.codex
    # Extra top-level keys of the profile, for provider templates (e.g. model_reasoning_effort).
    extra_profile_keys: tuple[tuple[str, Any], ...] = ()
    command: str = "configure"  # recorded with the backup, so `--restore` can say what it undoes
    ask_ollama: bool = True  # False: trust model + context as given (setup's dry run, before the variant exists)
    force: bool = False  # replace a read-only (0444) file anyway


@dataclass(frozen=True)
class WrittenFile:
    role: str  # "profile" | "config" | "model_catalog"
    path: Path
    target: Path  # where the bytes went (differs from `path` for a symlink)
    created: bool
    changed: bool
    diff: str


@dataclass(frozen=True)
class ConfigureResult:
    profile: str
    provider_id: str
    model: str
    base_url: str
    context_window: int | None
    auto_compact_token_limit: int | None
    context_source: str  # "--context" | "model num_ctx" | "loaded model" | "server: <where>" | "unknown"
    form: str  # "profile_file" (Codex ≥ 0.134) | "profiles_table" (older Codex)
    codex_version: str | None  # None: Codex not found
    files: tuple[WrittenFile, ...]
    changed: bool
    dry_run: bool
    backup_id: str | None
    run: str  # how to use it, e.g. "codex -p local_ollama"
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class RestoreResult:
    backup_id: str
    backup_time: str
    command: str
    files: tuple[WrittenFile, ...]
    dry_run: bool
    warnings: tuple[str, ...] = ()

"""`configure`: write the Codex profile that points Codex at a local (or any OpenAI-compatible) server.

What gets written, and why each key (facts: shared/reference/codex-config.md, verified on Codex 0.169):

* `$CODEX_HOME/<profile>.config.toml`, used with `codex -p <profile>` (Codex ≥ 0.134; older Codex gets a
  `[profiles.<profile>]` table in config.toml instead, see `edits.legacy_edits`):
  - `model`, `model_provider`; `model_context_window` = the context the server really runs the model with
    (Ollama's `num_ctx`; Codex would otherwise assume 272k and never compact), and
    `model_auto_compact_token_limit` at 90 % of it, so Codex compacts before the server truncates.
  - `web_search = "disabled"` and `[agents] enabled = false`: the only two non-function tools Codex sends;
    a local server cannot run a hosted search, and the sub-agent "namespace" tool is not a function.
  - `[features] unbounded_connection_retries = false`: with a stopped server Codex otherwise prints
    "Reconnecting… waiting for network" forever; with it, it fails in about a second.
  - `[model_providers.<id>]`: `name`, `base_url` (ends in /v1; Codex POSTs `{base_url}/responses`),
    `wire_api = "responses"` (the only value Codex accepts), `stream_idle_timeout_ms` (local models can
    think for minutes before the first token), and few retries (a local 5xx is rarely transient, Codex's
    defaults turn one into 30 requests over 25 s). Secrets are never written: `env_key` names a variable,
    secret headers go to `env_http_headers`.
* `--default` also puts the same session keys and the provider table in `$CODEX_HOME/config.toml`, so plain
  `codex` uses the local model; everything else in that file stays byte-identical.
* `--model-catalog` writes `<profile>.model-catalog.json` and points `model_catalog_json` at it (no more
  "Model metadata not found" warning). Such a catalog *replaces* Codex's built-in one for that profile.

All writes go through the adapters `codex_lock` (one lock beside the files), `codex_changes` (a backup before
any change, a journal across files, restore) and `codex_write` (atomic replacement); nothing at all is written
when nothing changes.

The package: `types` (request, results, defaults), `validate` (input checks, nothing touched), `model` (the model
and its real context), `edits` (the keys written), `catalog` (`--model-catalog`), `run` (configure, restore).
"""

from localcodex.core.configure.edits import (
    auto_compact_limit,
    is_local_url,
    profile_header,
    provider_edits,
    provider_table,
    session_keys,
)
from localcodex.core.configure.run import configure, restore
from localcodex.core.configure.types import (
    DEFAULT_PROFILE,
    DEFAULT_PROVIDER_ID,
    ConfigureRequest,
    ConfigureResult,
    RestoreResult,
    WrittenFile,
)
from localcodex.core.configure.validate import validate_env_name, validate_profile_name, validate_provider_id

__all__ = [
    "DEFAULT_PROFILE", "DEFAULT_PROVIDER_ID", "ConfigureRequest", "ConfigureResult", "RestoreResult", "WrittenFile",
    "auto_compact_limit", "configure", "is_local_url", "profile_header", "provider_edits", "provider_table",
    "restore", "session_keys", "validate_env_name", "validate_profile_name", "validate_provider_id",
]

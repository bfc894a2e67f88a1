"""`configure`: write the Codex profile that points Codex at a local (or any OpenAI-compatible) server.

What gets written, and why each key (facts: shared/reference/codex-config.md, verified on Codex 0.169):

* `$CODEX_HOME/<profile>.config.toml`, used with `codex -p <profile>` (Codex ≥ 0.134; older Codex gets a
  `[profiles.<profile>]` table in config.toml instead, see `_legacy_edits`):
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

All writes go through `adapters.codex_config`: one lock, a backup before any change, atomic replacement,
nothing at all when nothing changes.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcodex.adapters.server_facts import ServerContext
from localcodex.core.ports import Live
from localcodex.domain.codex import (
    BUILT_IN_PROVIDERS,
    ENV_NAME,
    HEADER_NAME,
    PROFILE_NAME,
    PROVIDER_ID,
    is_confusable_with_built_in,
    is_secret_header,
    is_secret_value,
    looks_secret,
)
from localcodex.domain.names import validate_model_name
from localcodex.domain.urls import locality, normalize_base_url, supports_profile_files
from localcodex.errors import ConfigError, LocalcodexError, OllamaUnavailable, UsageError

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


# ------------------------------------------------------------------------------------------- validation


def validate_profile_name(name: str) -> str:
    """Codex takes `-p NAME` only as a plain name: letters, digits, `-` and `_` (checked on 0.169).

    >>> validate_profile_name("local_ollama")
    'local_ollama'
    >>> validate_profile_name("a.b")
    Traceback (most recent call last):
    ...
    localcodex.errors.UsageError: invalid profile name 'a.b'
    """
    if not PROFILE_NAME.match(name):
        raise UsageError(
            f"invalid profile name {name!r}",
            "Codex accepts only plain names for -p: letters, digits, '-' and '_' (not starting with '-'), "
            "e.g. `local_ollama`",
        )
    return name


def validate_provider_id(provider_id: str) -> str:
    if is_confusable_with_built_in(provider_id):
        raise ConfigError(
            f"provider id {provider_id!r} is reserved by Codex",
            "Codex refuses to load a config that redefines its built-in providers "
            f"({', '.join(BUILT_IN_PROVIDERS)}); pick another --provider-id, e.g. `local_ollama`",
            code="reserved_id",
        )
    if not PROVIDER_ID.match(provider_id):
        raise UsageError(
            f"invalid provider id {provider_id!r}",
            "use letters, digits, '-' and '_' only, e.g. `local_ollama`",
        )
    return provider_id


MAX_CONTEXT = 10_000_000  # tokens; Codex keeps it as i64, no model comes near
MIN_IDLE_MS, MAX_IDLE_MS = 1_000, 86_400_000  # Codex's stream_idle_timeout_ms is a u64: 1 s to a day
def validate_env_name(name: str, what: str) -> str:
    if ENV_NAME.match(name):
        return name
    raise UsageError(
        f"{what}: {'that looks like a secret, not' if looks_secret(name) else 'not'} an environment variable name",
        f"{what} takes the NAME of a variable (e.g. GLM_API_KEY) that holds the secret; "
        "localcodex never writes secrets into Codex's files",
    )


def _validate_headers(req: ConfigureRequest) -> None:
    for name, value in req.http_headers:
        if not HEADER_NAME.match(name):
            raise UsageError(f"invalid HTTP header name {name!r}", "header names are tokens like X-Team-Id")
        if is_secret_header(name):
            raise UsageError(
                f"header {name!r} looks like it carries a secret; localcodex does not write secrets to disk",
                f"use --env-header {name}=VARIABLE_NAME so Codex reads the value from that variable",
            )
        if not value:
            raise UsageError(f"header {name!r} has an empty value", f"use --header {name}=VALUE")
        if is_secret_value(name, value):
            raise UsageError(
                f"the value of header {name!r} looks like a secret; localcodex does not write secrets to disk",
                f"export it in a variable and use --env-header {name}=VARIABLE_NAME")
    named = [(n, v, True) for n, v in req.query_params]
    named += [(n, v, False) for n, v in (*req.provider_extra, *req.extra_profile_keys)]  # e.g. max_tokens
    for name, value, by_name in named:
        if is_secret_value(str(name), value, by_name=by_name):
            raise UsageError(f"the value of {name!r} looks like a secret; localcodex does not write secrets to disk",
                             "put it in an environment variable: --env-key VARIABLE, or "
                             "--env-header NAME=VARIABLE for a header")
    for name, var in req.env_http_headers:
        if not HEADER_NAME.match(name):
            raise UsageError(f"invalid HTTP header name {name!r}", "header names are tokens like X-Api-Key")
        validate_env_name(var, f"--env-header {name}")


def _check_codex_home(codex_home: Path, env_home: Path) -> None:
    """Refuse a project's `.codex/` folder: Codex drops model_provider and model_providers there
    (a repository must not choose where your prompts and keys go), so the profile would silently do nothing."""
    if codex_home.resolve() == env_home.resolve():
        return
    from localcodex.paths import home_dir

    if codex_home.name == ".codex" and codex_home.resolve().parent != home_dir().resolve():
        raise ConfigError(
            f"{codex_home} is a project's .codex folder; Codex ignores provider settings there",
            "Codex reads model_provider and [model_providers] only from $CODEX_HOME/config.toml and "
            "$CODEX_HOME/<profile>.config.toml (a repository may not redirect your requests); "
            "drop --codex-home, or set CODEX_HOME if you really want Codex's home in that folder",
            code="project_local",
        )


# ------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class _ModelFacts:
    model: str
    context: int | None
    source: str
    warnings: tuple[str, ...] = ()


def _resolve_model(req: ConfigureRequest, live: Live, on_progress: Progress) -> _ModelFacts:
    """The model and its real context window: from the options, else from the Ollama server."""
    if req.base_url:
        if not req.model:
            raise UsageError("--model is required with --base-url", "name the model the server serves")
        if req.context:
            return _ModelFacts(req.model, req.context, "--context", ())
        stated = _server_context(req, live, on_progress)
        if stated is not None:
            return _ModelFacts(req.model, stated.tokens, f"server: {stated.source}", ())
        return _ModelFacts(req.model, None, "unknown", (
            "no --context given and the server does not state its context: Codex will assume a 272k-token "
            "window for this model; pass --context N with the server's real context size so Codex compacts in time",
        ))
    if req.model and req.context and not req.ask_ollama:
        return _ModelFacts(req.model, req.context, "--context", ())
    server = live.ollama_at(live.host(req.host), timeout=10.0)
    on_progress(f"asking Ollama at {server.host.native} about the model")
    try:
        model = req.model or _only_model(server)
        details = server.show(model)
    except OllamaUnavailable as exc:
        if req.model and req.context:
            return _ModelFacts(req.model, req.context, "--context", (
                f"could not reach Ollama at {server.host.native} to check that {req.model} is installed",))
        raise OllamaUnavailable(
            exc.message,
            f"{exc.hint}; or pass --model and --context to write the profile without asking Ollama",
        ) from None
    return _context_from(server, model, details, req.context)


def _server_context(req: ConfigureRequest, live: Live, on_progress: Progress) -> ServerContext | None:
    """The context the OpenAI-compatible server states for the model (llama-server's /props, /v1/models
    meta.n_ctx; Ollama's /api/ps), or None: not stated, unreachable, or no key to ask with."""
    from localcodex.adapters.server_facts import server_context

    assert req.base_url
    on_progress(f"asking {req.base_url} for the context it runs {req.model} with")
    try:
        with live.openai_client(req.base_url, env_key=req.env_key) as client:
            return server_context(client, req.model)
    except LocalcodexError:
        return None


def _only_model(server: Any) -> str:
    models = server.list()
    if len(models) == 1:
        return models[0].name
    names = ", ".join(m.name for m in models[:8]) + (" …" if len(models) > 8 else "")
    raise UsageError(
        "--model is required" + (f": Ollama has {len(models)} models ({names})" if models else
                                 ": Ollama has no models installed"),
        "pass --model NAME (localcodex recommend shows what fits this machine)",
    )


def _context_from(server: Any, model: str, details: Any, explicit: int | None) -> _ModelFacts:
    warnings = []
    if details.capabilities and not details.supports_tools:
        warnings.append(f"{model} does not support tool calling; Codex cannot edit files or run commands with it")
    if explicit:
        if details.num_ctx and details.num_ctx != explicit:
            warnings.append(f"--context {explicit} differs from the num_ctx {details.num_ctx} {model} runs with")
        return _ModelFacts(model, explicit, "--context", tuple(warnings))
    ctx, source = details.num_ctx, "model num_ctx"
    if not ctx:
        loaded = next((m for m in server.ps() if m.name == model or m.name == details.name), None)
        ctx, source = (loaded.context_length, "loaded model") if loaded else (None, "unknown")
    if not ctx:
        raise UsageError(
            f"{model} has no num_ctx parameter, so Ollama picks its context when it loads it "
            "(4096 on most machines, too small for Codex)",
            "pass --context N, or make a context variant with a fixed num_ctx (`localcodex setup` does)",
        )
    if details.context_length and ctx > details.context_length:
        warnings.append(f"num_ctx {ctx} exceeds what {model} was trained for; Ollama caps it at "
                        f"{details.context_length}")
        ctx = details.context_length
    return _ModelFacts(model, ctx, source, tuple(warnings))


# ------------------------------------------------------------------------------------------- the edits


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


def _provider_edits(provider_id: str, table: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
    return {("model_providers", provider_id, key): value for key, value in table.items()}


def _profile_edits(req: ConfigureRequest, facts: _ModelFacts, base_url: str,
                   catalog: Path | None) -> dict[tuple[str, ...], Any]:
    edits = session_keys(facts.model, req.provider_id, facts.context, is_local_url(base_url))
    edits[("model_catalog_json",)] = str(catalog) if catalog else None
    edits.update({(k,): v for k, v in req.extra_profile_keys})
    edits.update(_provider_edits(req.provider_id, provider_table(req, base_url)))
    return edits


def _legacy_edits(req: ConfigureRequest, facts: _ModelFacts, base_url: str,
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
    edits.update(_provider_edits(req.provider_id, provider_table(req, base_url)))
    return edits


# ------------------------------------------------------------------------------------------- catalog


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
    from localcodex.adapters.codex_config import make_private_dir, write_atomic

    make_private_dir(cache.parent)

    write_atomic(cache, text)
    return text, f"Codex {codex.version_str} default prompt"


# ------------------------------------------------------------------------------------------- main


def _noop(_: str) -> None:
    pass


def configure(req: ConfigureRequest, live: Live, on_progress: Progress | None = None) -> ConfigureResult:
    """Write (or with `dry_run`, show) the Codex profile for `req`. Idempotent: the same request twice
    changes nothing the second time (no write, no backup, `changed=False`)."""
    from localcodex.adapters import codex_cli

    progress = on_progress or _noop
    codex_home, base_url = _validate(req, live)
    codex = codex_cli.codex_info(env=live.inv.env)
    form, warnings = _form(req, codex, base_url)
    facts = _resolve_model(req, live, progress)
    warnings += [*facts.warnings, *_context_warnings(facts.context)]
    _ensure_home(codex_home, req)
    catalog = _catalog(req, codex, facts, codex_home, progress)
    if catalog:
        warnings.append(catalog[2])
    files, backup_id, more = _write(req, live, facts, base_url, form, codex_home, catalog)
    return ConfigureResult(
        profile=req.profile, provider_id=req.provider_id, model=facts.model, base_url=base_url,
        context_window=facts.context, auto_compact_token_limit=auto_compact_limit(facts.context),
        context_source=facts.source, form=form, codex_version=codex.version_str if codex else None,
        files=files, changed=any(f.changed for f in files), dry_run=req.dry_run, backup_id=backup_id,
        run="codex" if req.make_default else f"codex -p {req.profile}", warnings=tuple(warnings + more),
    )


def _validate(req: ConfigureRequest, live: Live) -> tuple[Path, str]:
    """Every check that needs no server and no file: bad input never gets near a user's file."""
    validate_profile_name(req.profile)
    validate_provider_id(req.provider_id)
    if req.env_key:
        validate_env_name(req.env_key, "--env-key")
    _validate_headers(req)
    if req.context is not None and req.context < 1024:
        raise UsageError(f"--context {req.context} is too small for Codex", "give the window in tokens, e.g. 32768")
    if req.context is not None and req.context > MAX_CONTEXT:
        raise UsageError(f"--context {req.context} is more than any model's window ({MAX_CONTEXT:,} tokens)",
                         "give the window the server really runs the model with, e.g. 32768")
    if not MIN_IDLE_MS <= req.stream_idle_timeout_ms <= MAX_IDLE_MS:
        raise UsageError(f"--idle-timeout {req.stream_idle_timeout_ms / 1000:g} s is outside what Codex can use",
                         f"give seconds from {MIN_IDLE_MS // 1000} to {MAX_IDLE_MS // 1000}, e.g. 600")
    if req.model is not None:
        validate_model_name(req.model, ollama=not req.base_url)
    codex_home = (req.codex_home or live.inv.codex_home).expanduser()
    _check_codex_home(codex_home, live.inv.codex_home)
    if req.base_url is not None and not req.base_url.strip():
        raise UsageError("--base-url is empty", "give the server's URL, e.g. http://127.0.0.1:8080/v1, or leave "
                         "the option out to use Ollama")
    base_url = normalize_base_url(req.base_url) if req.base_url else live.host(req.host).openai
    if req.base_url:  # a URL Codex can parse, but copied from an example with its placeholder left in
        _refuse_placeholder(req.base_url)
    return codex_home, base_url


def _refuse_placeholder(url: str) -> None:
    """A URL copied from an example with its placeholder left in (`https://…/v1`) names no server.

    >>> _refuse_placeholder("https://api.z.ai/api/v1")
    >>> _refuse_placeholder("https://…")
    Traceback (most recent call last):
    ...
    localcodex.errors.UsageError: --base-url https://… still has the placeholder "…" of an example: it names no server
    """
    host = urllib.parse.urlsplit(url.strip()).hostname or ""
    if "…" in url or "..." in url or not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):
        raise UsageError(f'--base-url {url} still has the placeholder "…" of an example: it names no server'
                         if ("…" in url or "..." in url) else f"--base-url {url} names no server host",
                         "give the provider's real URL, e.g. https://api.example.com/v1")


def _form(req: ConfigureRequest, codex: Any, base_url: str) -> tuple[str, list[str]]:
    """Profile file (Codex ≥ 0.134, or Codex not found) or `[profiles.NAME]` table (older Codex)."""
    from localcodex.adapters import codex_cli

    warnings = []
    form = "profile_file"
    if codex is None:
        warnings.append("Codex is not installed (no `codex` on PATH): wrote the profile-file form of "
                        f"Codex 0.134 and later; {codex_cli.INSTALL_HINT}")
    elif codex.version and not supports_profile_files(codex.version):
        form = "profiles_table"
        warnings.append(f"Codex {codex.version_str} predates profile files: wrote [profiles.{req.profile}] in "
                        "config.toml; that form cannot set the context window per profile; upgrade Codex "
                        "(0.134 or later) to get it")
    if not urllib.parse.urlsplit(base_url).path.rstrip("/").endswith("/v1"):
        warnings.append(f"base_url {base_url} does not end in /v1; Codex will POST to {base_url}/responses")
    return form, warnings


# Codex sends its instructions and tool schemas with every request: about 7k tokens on 0.169 before any work.
CODEX_OVERHEAD_TOKENS = 7000


def _context_warnings(context: int | None) -> list[str]:
    if context and context < 2 * CODEX_OVERHEAD_TOKENS:
        return [f"a {context}-token window leaves little room: Codex's instructions and tools alone take about "
                f"{CODEX_OVERHEAD_TOKENS} tokens; 16384 or more works much better"]
    return []


def _ensure_home(codex_home: Path, req: ConfigureRequest) -> None:
    """Codex refuses to start when CODEX_HOME names a missing folder, so the default one is created."""
    if codex_home.is_dir():
        return
    if codex_home.exists():
        raise ConfigError(f"{codex_home} is a file, not a folder; Codex keeps its config in a folder there",
                          "point CODEX_HOME (or --codex-home) at a folder, or move that file away",
                          code="codex_home_not_a_folder")
    if req.codex_home is not None:
        raise ConfigError(f"{codex_home} does not exist", "create it, or drop --codex-home")
    if not req.dry_run:
        from localcodex.adapters.codex_config import make_private_dir

        make_private_dir(codex_home)


def _catalog(req: ConfigureRequest, codex: Any, facts: _ModelFacts, codex_home: Path,
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
    from localcodex.errors import LocalcodexError

    try:
        doc = codex_config.read_document(codex_config.profile_path(codex_home, profile))
    except LocalcodexError:
        return False
    return bool(doc.get("model_catalog_json"))


def _write(req: ConfigureRequest, live: Live, facts: _ModelFacts, base_url: str, form: str, codex_home: Path,
           catalog: tuple[Path, str, str] | None) -> tuple[tuple[WrittenFile, ...], str | None, list[str]]:
    """Under the lock: compute every change from what is on disk now, check conflicts, commit."""
    from localcodex.adapters import codex_config

    config_path = codex_home / "config.toml"
    profile_file = codex_config.profile_path(codex_home, req.profile)
    store = codex_config.BackupStore(live.inv.backups_dir)
    if not req.dry_run:
        store.ensure()
    targets = [config_path, profile_file, store.index_path, *([catalog[0]] if catalog else [])]
    with codex_config.locked(targets) as recovered:
        planned = _plan(req, facts, base_url, form, config_path, profile_file,
                        catalog[0] if catalog else None, catalog[1] if catalog else None)
        warnings = [*recovered, *_conflicts(req, form, config_path)]
        done = None if req.dry_run else codex_config.commit(req.command, [c for _, c in planned], store,
                                                            force=req.force)
    files = tuple(WrittenFile(role, c.path, c.target, c.created, c.changed, c.diff()) for role, c in planned)
    warnings += [f"{f.path} is a symlink: wrote its target {f.target}" for f in files if f.path != f.target]
    return files, done.backup.id if done and done.backup else None, warnings


def profile_header(req: ConfigureRequest) -> str:
    return (
        f"# Codex profile written by `localcodex {req.command}`. Use it with: codex -p {req.profile}\n"
        "# Running localcodex again updates only the keys it wrote; your comments and other keys stay.\n\n"
    )


def _plan(req: ConfigureRequest, facts: _ModelFacts, base_url: str, form: str, config_path: Path,
          profile_file: Path, catalog_path: Path | None, catalog_text: str | None) -> list[tuple[str, Any]]:
    """Every file change of this run, computed from what is on disk now (under the lock)."""
    from localcodex.adapters import codex_config

    planned: list[tuple[str, Any]] = []
    if catalog_path and catalog_text:
        planned.append(("model_catalog", codex_config.plan_change(catalog_path, catalog_text)))
    config_edits: dict[tuple[str, ...], Any] = {}
    if form == "profile_file":
        edits = _profile_edits(req, facts, base_url, catalog_path)
        planned.append(("profile", codex_config.plan_edits(profile_file, edits, header=profile_header(req))))
    else:
        config_edits.update(_legacy_edits(req, facts, base_url, catalog_path))
    if req.make_default:
        config_edits.update(session_keys(facts.model, req.provider_id, facts.context, is_local_url(base_url)))
        config_edits.update(_provider_edits(req.provider_id, provider_table(req, base_url)))
    if config_edits:
        planned.append(("config", codex_config.plan_edits(config_path, config_edits)))
    return planned


def _conflicts(req: ConfigureRequest, form: str, config_path: Path) -> list[str]:
    """Things in config.toml that would break `codex -p NAME` on current Codex."""
    from localcodex.adapters import codex_config, toml_edit

    data = codex_config.read_data(config_path)
    warnings = []
    if form == "profile_file" and toml_edit.get_path(data, ("profiles", req.profile)) is not None:
        raise ConfigError(
            f"{config_path} still has a legacy [profiles.{req.profile}] table; Codex 0.134+ refuses "
            f"`-p {req.profile}` while it exists",
            f"delete that table from {config_path} (its settings now live in {req.profile}.config.toml), "
            "or choose another --profile",
            code="legacy_profile",
        )
    if form == "profile_file" and isinstance(data.get("profile"), str):
        warnings.append(f"{config_path} sets `profile = \"{data['profile']}\"`, which current Codex refuses "
                        "at start-up; remove that line")
    return warnings


# ------------------------------------------------------------------------------------------- restore


def restore(live: Live, *, force: bool = False, dry_run: bool = False) -> RestoreResult:
    """Undo the last localcodex change to Codex's files (configure, provider add…)."""
    from localcodex.adapters import codex_config

    store = codex_config.BackupStore(live.inv.backups_dir)
    targets = [Path(f.path) for f in store.last().files]
    with codex_config.locked([*targets, store.index_path]):
        done = codex_config.restore_last(store, force=force, dry_run=dry_run)
    files = tuple(
        WrittenFile("restored", c.path, c.target, c.created, c.changed, c.diff()) for c in done.changes
    )
    return RestoreResult(done.run.id, done.run.time, done.run.command, files, dry_run)


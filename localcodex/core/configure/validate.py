"""configure's checks that need no server and no file: bad input never gets near a user's file."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

from localcodex.core.configure.types import ConfigureRequest
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
from localcodex.domain.urls import normalize_base_url
from localcodex.errors import ConfigError, UsageError


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


def validate_headers(req: ConfigureRequest) -> None:
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


def validate_request(req: ConfigureRequest, live: Live) -> tuple[Path, str]:
    """Every check that needs no server and no file: bad input never gets near a user's file."""
    validate_profile_name(req.profile)
    validate_provider_id(req.provider_id)
    if req.env_key:
        validate_env_name(req.env_key, "--env-key")
    validate_headers(req)
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

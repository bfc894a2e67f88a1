"""Where a Codex config holds a credential written literally: the one rule `doctor` reports from and the commands
that write Codex's files check after writing (a file holding one must not stay readable by other users).

Pure: the values are looked at, never returned; callers mask what they show (`domain.codex.mask`,
`domain.urls.redact_url`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from localcodex.domain.codex import ENV_NAME, is_secret_query_param, looks_secret
from localcodex.domain.urls import url_credentials

KeyPath = tuple[str, ...]


def provider_secrets(table: Mapping[str, Any]) -> Iterator[KeyPath]:
    """The keys of one `[model_providers.<id>]` table that hold a credential: a bearer token, a header value
    that is (or is named like) one, a `base_url` with a user name, password or key in it, a key in `query_params`,
    and a key written where the NAME of a variable belongs (`env_key`, `env_http_headers`).

    >>> list(provider_secrets({"base_url": "http://a:b@h/v1", "http_headers": {"X-Team": "core", "X-Api-Key": "k"},
    ...                        "query_params": {"api-version": "1", "key": "AIza0123456789"}}))
    [('base_url',), ('query_params', 'key')]
    >>> list(provider_secrets({"http_headers": {"Authorization": "Bearer sk-live-0123456789abcdef"}}))
    [('http_headers', 'Authorization')]
    >>> list(provider_secrets({"env_key": "sk-live-0123456789abcdef", "env_http_headers": {"X-Key": "TEAM_KEY"}}))
    [('env_key',)]
    """
    token = table.get("experimental_bearer_token")
    if isinstance(token, str) and token.strip():
        yield ("experimental_bearer_token",)
    headers = table.get("http_headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if isinstance(value, str) and looks_secret(value, str(name)):
                yield ("http_headers", str(name))
    base = table.get("base_url")
    if isinstance(base, str) and url_credentials(base):
        yield ("base_url",)
    params = table.get("query_params")
    if isinstance(params, Mapping):
        for name, value in params.items():
            if isinstance(value, str) and is_secret_query_param(str(name), value):
                yield ("query_params", str(name))
    var = table.get("env_key")
    if isinstance(var, str) and _key_for_a_name(var):
        yield ("env_key",)
    env_headers = table.get("env_http_headers")
    if isinstance(env_headers, Mapping):
        for name, value in env_headers.items():
            if isinstance(value, str) and _key_for_a_name(value):
                yield ("env_http_headers", str(name))


def _key_for_a_name(value: str) -> bool:
    """A key written where Codex wants the name of the variable that holds it."""
    return not ENV_NAME.match(value.strip()) and looks_secret(value)


def config_secrets(data: Mapping[str, Any]) -> list[KeyPath]:
    """Every key of a parsed config file (user config or profile file) that holds a credential.

    >>> config_secrets({"model": "m", "model_providers": {"gw": {"experimental_bearer_token": "t0k3n-value"}}})
    [('model_providers', 'gw', 'experimental_bearer_token')]
    """
    tables = data.get("model_providers")
    if not isinstance(tables, Mapping):
        return []
    return [("model_providers", str(pid), *key) for pid, table in tables.items() if isinstance(table, Mapping)
            for key in provider_secrets(table)]

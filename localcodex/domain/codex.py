"""Facts about the Codex CLI (0.169, see shared/reference/codex-config.md) and its config layering, in one place.

`configure` (which writes Codex's files) and `doctor` (which reads them) use the same facts; `check`, `trial`
and `doctor` resolve a profile through the same deep merge. Pure: the file reading stays in adapters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

# -- providers (A2) ---------------------------------------------------------------------------------------------

RESERVED_HARD = ("openai", "ollama", "lmstudio")  # a [model_providers.<id>] table with these ids is fatal
RESERVED_PARTIAL: dict[str, tuple[str, ...]] = {  # built in; only these fields may be changed
    "amazon-bedrock": ("base_url", "auth", "http_headers", "aws"),
    "amazon-bedrock-runtime": ("base_url", "auth", "http_headers", "aws"),
    "gcp": ("base_url", "auth", "http_headers", "project_id", "location", "credential_file"),
}
AWS_FIELDS = ("profile", "region", "credential_export", "auth_refresh")
BUILT_IN_PROVIDERS = (*RESERVED_HARD, *RESERVED_PARTIAL)


def is_reserved_provider_id(provider_id: str) -> bool:
    """Is this id one of Codex's built-in providers (a custom table under it fails or is restricted)?

    Codex compares ids exactly (they are TOML keys), so `Ollama` is an ordinary custom id.

    >>> is_reserved_provider_id("ollama"), is_reserved_provider_id("gcp"), is_reserved_provider_id("Ollama")
    (True, True, False)
    >>> is_reserved_provider_id("local_ollama"), is_reserved_provider_id("ollama-chat")
    (False, False)
    """
    return provider_id in BUILT_IN_PROVIDERS


def is_confusable_with_built_in(provider_id: str) -> bool:
    """Would this id read as a built-in provider (any case)? localcodex never writes such an id: `OpenAI` loads
    in Codex, but a reader (or a case-insensitive tool) would take it for the real one.

    >>> is_confusable_with_built_in("OpenAI"), is_confusable_with_built_in("local_ollama")
    (True, False)
    """
    return provider_id.lower() in BUILT_IN_PROVIDERS


CHAT_REMOVED = (
    '`wire_api = "chat"` is no longer supported.\nHow to fix: set `wire_api = "responses"` in your provider '
    "config.\nMore info: https://github.com/openai/codex/discussions/7782"
)
OLLAMA_CHAT_REMOVED = (
    "`ollama-chat` is no longer supported.\nHow to fix: replace `ollama-chat` with `ollama` in `model_provider`, "
    "`oss_provider`, or `--local-provider`.\nMore info: https://github.com/openai/codex/discussions/7782"
)

# -- names (A3, A6) ---------------------------------------------------------------------------------------------

# `-p NAME` takes a plain name (`a.b`, `../x`, `a b` are refused); one starting with '-' would read as a flag;
# at most 64 characters (test_configure pins that a 65-character name is refused).
PROFILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
PROVIDER_ID = PROFILE_NAME  # what localcodex writes as a [model_providers.<id>] key
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

# -- project-local config (A5) ----------------------------------------------------------------------------------

PROJECT_DENYLIST = (
    "openai_base_url", "chatgpt_base_url", "apps_mcp_product_sku", "model_provider", "model_providers", "notify",
    "profile", "profiles", "experimental_realtime_webrtc_call_base_url", "experimental_realtime_ws_base_url", "otel",
)  # fmt: skip
PROJECT_DENYLIST_NESTED = (("features", "respect_system_proxy"),)

# -- layering (A3, A5) ------------------------------------------------------------------------------------------


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Codex's layer merge: tables merge key by key, any other value of `top` replaces the one of `base`.

    >>> deep_merge({"model_providers": {"p": {"base_url": "u", "name": "P"}}, "model": "a"},
    ...            {"model_providers": {"p": {"name": "Q"}}, "model": "b"})
    {'model_providers': {'p': {'base_url': 'u', 'name': 'Q'}}, 'model': 'b'}
    """
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def project_effective(data: Mapping[str, Any]) -> dict[str, Any]:
    """What Codex keeps of a trusted project-local config: everything but the denylisted keys.

    >>> project_effective({"model": "m", "model_provider": "x", "features": {"respect_system_proxy": True, "a": 1}})
    {'model': 'm', 'features': {'a': 1}}
    """
    out = {k: v for k, v in data.items() if k not in PROJECT_DENYLIST}
    for parent, child in PROJECT_DENYLIST_NESTED:
        if isinstance(out.get(parent), Mapping) and child in out[parent]:
            out[parent] = {k: v for k, v in out[parent].items() if k != child}
    return out


def layered(layers: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The configuration Codex uses: `(kind, data)` layers in load order (user, profile, project...), deep-merged,
    with a project layer's denylisted keys dropped.

    >>> layered([("user", {"model": "a"}), ("profile", {"model": "b"}), ("project", {"model_provider": "x"})])
    {'model': 'b'}
    """
    merged: dict[str, Any] = {}
    for kind, data in layers:
        merged = deep_merge(merged, project_effective(data) if kind == "project" else data)
    return merged


def selected_provider(merged: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(model, model_provider, that provider's base_url) of a merged configuration; None where unset.

    >>> selected_provider({"model": "m", "model_provider": "p", "model_providers": {"p": {"base_url": "u"}}})
    ('m', 'p', 'u')
    """
    provider = _str(merged.get("model_provider"))
    tables = merged.get("model_providers")
    table = tables.get(provider) if provider and isinstance(tables, Mapping) else None
    base_url = table.get("base_url") if isinstance(table, Mapping) else None
    return _str(merged.get("model")), provider, _str(base_url)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- secrets ----------------------------------------------------------------------------------------------------

SECRET_HEADER_NAME = re.compile(r"(authorization|api[-_]?key|auth[-_]?token|token|secret|password|cookie)",
                                re.IGNORECASE)
_KEY_PREFIX = re.compile(r"^(?:sk|pk|rk|ghp|gho|ghs|ghu|github_pat|glpat|xox[abprs]|hf|AKIA|AIza)[-_A-Za-z0-9]{8,}")
_SCHEME = re.compile(r"^(?:bearer|basic|token|apikey)\s+(?P<token>\S{8,})$", re.IGNORECASE)


def is_secret_header(name: str) -> bool:
    """Does a header's name say it carries a credential?

    >>> is_secret_header("Authorization"), is_secret_header("X-Goog-Api-Key"), is_secret_header("X-Team-Id")
    (True, True, False)
    """
    return SECRET_HEADER_NAME.search(name) is not None


def entropy(text: str) -> float:
    """Shannon entropy in bits per character (a random key is near 4-6; words and names are lower).

    >>> round(entropy("aaaa"), 2)
    0.0
    """
    if not text:
        return 0.0
    counts = {c: text.count(c) for c in set(text)}
    return sum(n / len(text) * math.log2(len(text) / n) for n in counts.values())


def looks_secret(value: str, name: str = "") -> bool:
    """Does a literal value look like a key or token? (A header named like one counts, whatever its value.)

    >>> looks_secret("Bearer sk-live-0123456789abcdef")
    True
    >>> looks_secret("x7Hq9LmP2vR8sK4tW6yZ1nB3cD5fG0jA")
    True
    >>> looks_secret("my-team-client"), looks_secret("GLM_API_KEY")
    (False, False)
    >>> looks_secret("anything-at-all", "Authorization")
    True
    """
    text = value.strip()
    if len(text) < 8:
        return False
    if (name and is_secret_header(name)) or _SCHEME.match(text) or _KEY_PREFIX.match(text):
        return True
    random_like = re.fullmatch(r"[A-Za-z0-9+/=_\-.~]{20,}", text) is not None
    has_mix = bool(re.search(r"\d", text)) and bool(re.search(r"[A-Za-z]", text))
    return random_like and has_mix and entropy(text) >= 3.5


def mask(value: str) -> str:
    """Enough of a secret to recognise it, never enough to use it.

    >>> mask("Bearer sk-live-0123456789abcdef")
    'Bearer sk-…(24 characters)'
    >>> mask("x7Hq9LmP2vR8sK4tW6yZ1nB3cD5fG0jA")
    'x7H…(32 characters)'
    """
    text = value.strip()
    scheme = _SCHEME.match(text)
    prefix = text[: scheme.start("token")] if scheme else ""
    token = text[len(prefix) :]
    shown = token[:3] if len(token) >= 12 else ""
    return f"{prefix}{shown}…({len(token)} characters)"


# Query parameters named like these carry a key whatever the value looks like (`?key=` is Google's API key).
SECRET_QUERY_NAME = re.compile(r"^(?:key|sig|signature|code|pwd|pass|passwd|password|auth|credentials?|"
                               r"access[-_]?key|client[-_]?secret|session)$", re.IGNORECASE)


def is_secret_query_param(name: str, value: str) -> bool:
    """Does a URL's (or a `query_params` table's) parameter carry a credential?

    >>> is_secret_query_param("api_key", "abc"), is_secret_query_param("key", "AIzaSyA1"), is_secret_query_param(
    ...     "team", "sk-live-0123456789abcdef")
    (True, True, True)
    >>> [is_secret_query_param(*p) for p in (("api-version", "2024-10-21"), ("monkey", "x"), ("token", ""))]
    [False, False, False]
    """
    if not value.strip():
        return False
    return SECRET_QUERY_NAME.match(name) is not None or is_secret_value(name, value)


def is_secret_value(name: str, value: Any, *, by_name: bool = True) -> bool:
    """A literal value that is (or, with `by_name`, is named like) a key or token: it must not be written to
    Codex's files."""
    if isinstance(value, Mapping):
        return any(is_secret_value(str(k), v, by_name=by_name) for k, v in value.items())
    if not isinstance(value, str) or not value.strip():
        return False
    return (by_name and is_secret_header(name)) or looks_secret(value, name if by_name else "")

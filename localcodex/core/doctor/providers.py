"""doctor's checks of [model_providers.<id>] tables: what Codex itself checks while loading a file."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from localcodex.core.doctor.fixes import file_configure, ollama_root
from localcodex.core.doctor.types import (
    ConfigFile,
    Finding,
)
from localcodex.domain.codex import (
    AWS_FIELDS,
    CHAT_REMOVED,
    ENV_NAME,
    RESERVED_HARD,
    RESERVED_PARTIAL,
    looks_secret,
    mask,
)
from localcodex.domain.secrets import config_secrets, provider_secrets
from localcodex.domain.urls import (
    DEFAULT_OLLAMA_PORT,
    BaseUrlMistake,
    locality,
    redact_url,
    repair_base_url,
    url_credentials,
)

# -- provider tables (what Codex checks while loading the file) -------------------------------------------------


def providers_of(file: ConfigFile) -> Iterator[tuple[str, Mapping[str, Any]]]:
    tables = file.get(("model_providers",))
    if isinstance(tables, Mapping):
        for pid, table in tables.items():
            if isinstance(table, Mapping):
                yield str(pid), table


def provider_table_findings(file: ConfigFile) -> Iterator[Finding]:
    for pid, table in providers_of(file):
        key = ("model_providers", pid)
        if pid in RESERVED_HARD:
            yield _reserved_hard(file, pid)
        elif pid in RESERVED_PARTIAL:
            yield from _reserved_partial(file, pid, table)
        else:
            yield from _custom_provider(file, pid, table, key)


def _reserved_hard(file: ConfigFile, pid: str) -> Finding:
    codex_says = (f"model_providers contains reserved built-in provider IDs: `{pid}`. Built-in providers cannot be "
                  "overridden. Rename your custom provider (for example, `openai-custom`).")
    local = pid in ("ollama", "lmstudio")
    taken = {other for other, _ in providers_of(file)}
    choices = {"ollama": ("local_ollama", "ollama-local"), "lmstudio": ("local_lmstudio", "lmstudio-local")}
    options = choices.get(pid, ("openai-custom", "openai-compatible"))
    rename = next((c for c in options if c not in taken), f"{pid}-custom")
    fix = f"rename [model_providers.{pid}] to [model_providers.{rename}] and set model_provider = \"{rename}\""
    if local:
        fix += " (that id is yours to choose: `ollama`, `lmstudio` and `openai` are Codex's built-in providers)"
    return file.finding("provider-reserved-id", "error", f"Codex refuses to start: {codex_says}",
                        ("model_providers", pid), fix)


def _reserved_partial(file: ConfigFile, pid: str, table: Mapping[str, Any]) -> Iterator[Finding]:
    allowed = RESERVED_PARTIAL[pid]
    bad = [k for k in table if k not in allowed and not (k == "wire_api" and table[k] == "responses")]
    aws = table.get("aws")
    if isinstance(aws, Mapping):
        bad += [f"aws.{k}" for k in aws if k not in AWS_FIELDS]
    if not bad:
        return
    if pid == "gcp":
        fields = "`base_url`, `auth`, `http_headers`, `project_id`, `location`, and `credential_file`"
    else:
        fields = ("`base_url`, `auth`, `http_headers`, `aws.profile`, `aws.region`, `aws.credential_export`, "
                  "and `aws.auth_refresh`")
    codex_says = (f"model_providers.{pid} only supports changing {fields}; other non-default provider fields "
                  "are not supported")
    first = bad[0].split(".")
    yield file.finding(
        "provider-reserved-id", "error",
        f"`{pid}` is a built-in provider and only some fields can be changed ({', '.join(bad)} cannot): {codex_says}",
        ("model_providers", pid, *first),
        f"remove {', '.join(bad)} from [model_providers.{pid}], or define your own provider under another id",
    )


def _custom_provider(file: ConfigFile, pid: str, table: Mapping[str, Any], key: tuple[str, ...]) -> Iterator[Finding]:
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        yield file.finding(
            "provider-name-missing", "error",
            f"Codex refuses to start: model_providers.{pid}: provider name must not be empty",
            (*key, "name") if "name" in table else key, f'add name = "{pid}" to [model_providers.{pid}]',
        )
    yield from _wire_api(file, pid, table, key)
    yield from _base_url_static(file, pid, table, key)
    yield from _secrets(file, pid, table, key)
    yield from _env_key_shape(file, pid, table, key)
    yield from _env_headers_shape(file, pid, table, key)


def _wire_api(file: ConfigFile, pid: str, table: Mapping[str, Any], key: tuple[str, ...]) -> Iterator[Finding]:
    wire = table.get("wire_api")
    if wire is None or wire == "responses":
        return
    if wire == "chat":
        message = f"Codex refuses to start: {CHAT_REMOVED}\nin `model_providers.{pid}.wire_api`"
    else:
        message = f"Codex refuses to start: unknown variant `{wire}`, expected `responses`"
    command = _local_configure(file, pid, table)
    yield file.finding(
        "wire-api", "error", message, (*key, "wire_api"),
        'set wire_api = "responses" (the only value Codex accepts; Ollama serves /v1/responses since 0.13.3)'
        + (f", or rewrite the provider with `{command}`" if command else ""),
        command,
    )


def _local_configure(file: ConfigFile, pid: str, table: Mapping[str, Any]) -> str | None:
    """configure can rewrite this table only when it is a local Ollama provider."""
    base = table.get("base_url")
    if not isinstance(base, str) or not _looks_local_ollama(table):
        return None
    return file_configure(file, pid, ollama_root(base))


def _looks_local_ollama(table: Mapping[str, Any]) -> bool:
    base = table.get("base_url")
    if not isinstance(base, str):
        return False
    split = urllib.parse.urlsplit(base.strip())
    return split.port == DEFAULT_OLLAMA_PORT or locality(base).on_this_machine


_MISTAKES = {
    BaseUrlMistake.NOT_A_URL: "is not a URL Codex can use (it needs http:// or https:// and a host)",
    BaseUrlMistake.DOUBLED_V1: "has /v1 twice",
    BaseUrlMistake.DOUBLE_SLASH: "has // in its path, which Ollama answers with a redirect (301) that the POST "
                                 "does not survive",
    BaseUrlMistake.ENDPOINT_PATH: "ends with an endpoint path, but Codex appends /responses itself",
    BaseUrlMistake.OLLAMA_ROOT: "lacks /v1, where Ollama serves its OpenAI-compatible API",
    BaseUrlMistake.MISSING_V1: "lacks /v1, where Ollama serves its OpenAI-compatible API",
    BaseUrlMistake.WRONG_SERVER: "is not an OpenAI-compatible API",
}


def _base_url_static(file: ConfigFile, pid: str, table: Mapping[str, Any], key: tuple[str, ...]) -> Iterator[Finding]:
    base = table.get("base_url")
    if base is None:
        yield file.finding(
            "base-url-missing", "warning",
            f"[model_providers.{pid}] has no base_url, so Codex sends its requests to OpenAI "
            "(https://api.openai.com/v1), not to a local server", key,
            f'add base_url = "http://localhost:11434/v1" (Ollama) or your server\'s /v1 URL to [model_providers.{pid}]',
        )
    if not isinstance(base, str):
        return
    repair = repair_base_url(base)
    mistake = repair.mistake
    if mistake is None:
        return
    good = redact_url(repair.fixed, drop=True)
    shown = redact_url(base.strip())
    posts = f"{shown.rstrip('/')}/responses"
    yield file.finding(
        "base-url-wrong", "error",
        f"base_url {shown!r} {_MISTAKES[mistake]}: Codex would POST {posts}, which answers 404",
        (*key, "base_url"), f'set base_url = "{good}"', _local_configure(file, pid, table),
    )


def holds_secret(file: ConfigFile) -> bool:
    """Does the file hold a credential in clear (domain.secrets, what `_secrets` reports)?"""
    return bool(file.data and config_secrets(file.data))


def _secrets(file: ConfigFile, pid: str, table: Mapping[str, Any], key: tuple[str, ...]) -> Iterator[Finding]:
    """Credentials written literally (domain.secrets.provider_secrets): each named by where it sits and masked,
    never shown, with the way to pass it from the environment instead."""
    for where in provider_secrets(table):
        if where[0] in ("env_key", "env_http_headers"):
            continue  # `_env_key_shape` / `_env_headers_shape`: the name of a variable is wanted there
        if where[0] == "experimental_bearer_token":
            yield file.finding(
                "secret-in-config", "warning",
                f"a bearer token is written literally in {file.path.name} ({mask(table[where[0]])}): anyone who can "
                "read the file, a backup or a screen share has the key",
                (*key, *where),
                f'delete it; put the key in an environment variable and reference it: env_key = "{_var_for(pid)}" '
                f"(and `export {_var_for(pid)}=…` in your shell start-up file)",
            )
        elif where[0] == "http_headers":
            header = where[1]
            var = _var_for(pid, header)
            yield file.finding(
                "secret-in-config", "warning",
                f"http_headers.{header} looks like a secret written literally ({mask(table[where[0]][header])})",
                (*key, *where),
                f'move it to env_http_headers = {{ "{header}" = "{var}" }} and `export {var}=…` '
                "(Codex sends the header when the variable is set)",
            )
        elif where[0] == "base_url":
            yield _url_secret(file, pid, table["base_url"], key)
        else:
            yield file.finding(
                "secret-in-config", "warning",
                f"query_params.{where[1]} holds a credential written literally ({mask(table[where[0]][where[1]])})",
                (*key, *where),
                f"remove it from query_params and pass the key from the environment: "
                f"{_KEY_ELSEWHERE.format(var=_var_for(pid))}",
            )


def _url_secret(file: ConfigFile, pid: str, base: str, key: tuple[str, ...]) -> Finding:
    found = url_credentials(base)
    auth = _var_for(pid, "authorization")
    how = [f'env_http_headers = {{ "Authorization" = "{auth}" }} with '
           f'`export {auth}="Basic $(printf %s USER:PASSWORD | base64)"`'] if "user name" in found[0] else []
    if any("query parameter" in f for f in found):
        how.append(_KEY_ELSEWHERE.format(var=_var_for(pid)))
    return file.finding(
        "secret-in-config", "warning",
        f"base_url holds {' and '.join(found)} written literally (shown masked: {redact_url(base.strip())}): "
        "anyone who can read the file, a backup or a screen share has it, and servers and proxies log URLs",
        (*key, "base_url"),
        f'set base_url = "{redact_url(base.strip(), drop=True)}" and pass the credential from the environment: '
        f'{"; for the key: ".join(how)}',
    )


# Codex has no environment form of query parameters: a key can leave the file only if the server also takes it
# in a header, which OpenAI-compatible servers and most gateways do.
_KEY_ELSEWHERE = (
    'env_key = "{var}" (Codex sends it as `Authorization: Bearer`) or env_http_headers = {{ "api-key" = "{var}" }} '
    "for a server that wants its own header, and `export {var}=…`; a server that takes the key only in the URL "
    "needs it in the file: then keep the file private (`chmod 600`)"
)


def _var_for(pid: str, header: str = "") -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "_", f"{pid}_{header or 'api_key'}").strip("_").upper()
    return stem if ENV_NAME.match(stem) else f"X_{stem}"


def _env_key_shape(file: ConfigFile, pid: str, table: Mapping[str, Any], key: tuple[str, ...]) -> Iterator[Finding]:
    var = table.get("env_key")
    if not isinstance(var, str) or ENV_NAME.match(var.strip()):
        return
    if looks_secret(var):
        yield file.finding(
            "env-key-is-secret", "error",
            f"env_key holds what looks like the key itself ({mask(var)}), not the name of a variable: Codex looks "
            "for a variable with that name and fails every turn; the key also sits in the file in clear",
            (*key, "env_key"),
            f'export the key as a variable (`export {_var_for(pid)}=…`) and set env_key = "{_var_for(pid)}"',
        )
    else:
        yield file.finding(
            "env-key-invalid", "error", f"env_key {var!r} is not a valid environment variable name",
            (*key, "env_key"), 'use a name like "MY_PROVIDER_API_KEY" (letters, digits, underscores)',
        )


def _env_headers_shape(file: ConfigFile, pid: str, table: Mapping[str, Any],
                       key: tuple[str, ...]) -> Iterator[Finding]:
    headers = table.get("env_http_headers")
    if not isinstance(headers, Mapping):
        return
    for header, var in headers.items():
        if not isinstance(var, str) or ENV_NAME.match(var.strip()):
            continue
        where = (*key, "env_http_headers", str(header))
        name = _var_for(pid, str(header))
        if looks_secret(var):
            yield file.finding(
                "env-header-is-secret", "error",
                f"env_http_headers.{header} holds what looks like the value itself ({mask(var)}), not the name of a "
                "variable: Codex sends no header, and the secret sits in the file in clear", where,
                f'export the value as a variable (`export {name}=…`) and set env_http_headers = '
                f'{{ "{header}" = "{name}" }}',
            )
        else:
            yield file.finding(
                "env-header-invalid", "error",
                f"env_http_headers.{header} = {var!r} is not a valid environment variable name", where,
                f'use a name like "{name}" (letters, digits, underscores)',
            )

"""The offline half of `doctor`: findings from config files, the environment and the installed Codex.

Each rule is a small function from what was read to findings; `doctor.py` holds the types and the run.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from localcodex.core.doctor.run import (
    AWS_FIELDS,
    BUILT_IN_PROVIDERS,
    CHAT_REMOVED,
    ENV_NAME,
    NPM_INSTALL,
    OLLAMA_CHAT_REMOVED,
    PROFILE_FILES_SINCE,
    PROFILE_NAME,
    PROJECT_DENYLIST,
    PROJECT_DENYLIST_NESTED,
    RESERVED_HARD,
    RESERVED_PARTIAL,
    ConfigFile,
    Finding,
    Target,
    _Run,
    closest,
    dotted,
    looks_secret,
    mask,
    version_tuple,
)

# -- reading ----------------------------------------------------------------------------------------------------


def read_files(run: _Run) -> tuple[ConfigFile, ...]:
    """The files `codex` would load here: user config, profile files, project-local configs (root → cwd).

    With `--profile NAME` only that profile file is examined (the others are still read, for hints).
    """
    from localcodex.adapters import codex_files

    home = run.codex_home
    user_path, project_paths = codex_files.user_and_project_files(home, run.cwd)
    user = codex_files.read_config(user_path, "user") if user_path else None
    run.all_profiles = tuple(
        codex_files.read_config(path, "profile", name) for name, path in codex_files.profile_files(home)
    )
    profiles = tuple(f for f in run.all_profiles if run.req.profile in (None, f.profile))
    projects = tuple(codex_files.read_config(path, "project") for path in project_paths)
    projects = tuple(_with_trust(f, user, run.cwd) for f in projects)
    return tuple(x for x in (user,) if x is not None) + profiles + projects


def _with_trust(file: ConfigFile, user: ConfigFile | None, cwd: Path) -> ConfigFile:
    """Codex loads an untrusted project's config but disables it; trust lives in the user config."""
    from dataclasses import replace

    projects = (user.get(("projects",)) if user else None) or {}
    level = None
    for folder in (cwd, *cwd.parents):
        entry = projects.get(str(folder)) if isinstance(projects, Mapping) else None
        if isinstance(entry, Mapping) and "trust_level" in entry:
            level = entry["trust_level"]
            break
    return replace(file, trusted=level == "trusted")


def codex_home_findings(run: _Run) -> None:
    """CODEX_HOME pointing at a folder that does not exist stops Codex before it reads anything."""
    explicit = run.env.get("CODEX_HOME", "").strip()
    if explicit and not run.codex_home.exists():
        run.add(Finding(
            "codex-home-missing", "error",
            f'Codex refuses to start: Error finding codex home: CODEX_HOME points to "{run.codex_home}", but that '
            "path does not exist", None, "CODEX_HOME", None,
            f"create the folder (`mkdir -p {run.codex_home}`) or unset CODEX_HOME (default ~/.codex)",
            f"mkdir -p {run.codex_home}"))


# -- Codex itself -----------------------------------------------------------------------------------------------


def codex_findings(run: _Run, files: Iterable[ConfigFile]) -> None:
    from localcodex.adapters import codex_files

    found = codex_files.codex_version(run.env)
    run.codex_found, run.codex_version = found
    if not run.codex_found:
        run.add(Finding(
            "codex-missing", "error",
            "the Codex CLI is not installed (no `codex` on PATH): there is nothing to run the local model with",
            fix="install it with npm (Node.js 18 or newer), then run `localcodex doctor` again",
            fix_command=NPM_INSTALL,
        ))
        return
    version = version_tuple(run.codex_version)
    if version is None or version >= PROFILE_FILES_SINCE:
        return
    profiles = [f for f in files if f.kind == "profile"]
    what = f"codex {'.'.join(map(str, version))}"
    if profiles:
        names = ", ".join(f"{f.profile}.config.toml" for f in profiles)
        message = (f"{what} is too old for profile files ({names}): they arrived in Codex 0.134, so "
                   f"`codex -p {profiles[0].profile}` ignores them")
        run.add(Finding("codex-too-old", "error", message, str(profiles[0].path), fix=_UPGRADE,
                        fix_command=f"{NPM_INSTALL}@latest"))
    else:
        run.add(Finding("codex-too-old", "warning",
                        f"{what} predates profile files (Codex 0.134), which localcodex writes",
                        fix=_UPGRADE, fix_command=f"{NPM_INSTALL}@latest"))


_UPGRADE = "upgrade Codex to the latest release"


def codex_reads_profile_files(run: _Run) -> bool:
    """Profile files and no legacy profiles: true for current Codex, and when the version is unknown."""
    version = version_tuple(run.codex_version)
    return version is None or version >= PROFILE_FILES_SINCE


# -- config files -----------------------------------------------------------------------------------------------


def config_findings(run: _Run, files: tuple[ConfigFile, ...], targets: tuple[Target, ...]) -> None:
    for file in files:
        if not file.ok:
            run.add(_parse_error(file))
        elif file.kind == "project":
            run.add(*project_findings(file))
        else:
            run.add(*provider_table_findings(file))
            run.add(*legacy_profile_findings(run, file))
    if run.req.profile is not None and not any(f.kind == "profile" for f in files):
        run.add(_profile_missing(run, files))
    elif run.req.profile is None and not any(f.ok and f.kind != "project" and (f.data or {}).get("model_provider")
                                             for f in files):
        run.add(Finding(
            "no-local-provider", "info",
            f"no Codex configuration in {run.codex_home} selects a model provider: plain `codex` uses OpenAI's "
            "hosted models, and there is no profile for a local one yet", None, None, None,
            "run `localcodex setup`: it picks a model that fits, proves it and writes the profile",
            "localcodex setup"))
    for target in targets:
        run.add(*target_findings(run, target, files))


def _parse_error(file: ConfigFile) -> Finding:
    where = f"line {file.error_line}, column {file.error_column}" if file.error_line else "somewhere"
    effect = ("Codex stops with `Error loading config.toml` before doing anything"
              if file.kind != "project" else "Codex cannot load this project's configuration")
    return Finding(
        "config-invalid", "error", f"{file.path.name} is not valid TOML ({where}): {file.error}. {effect}",
        str(file.path), None, file.error_line,
        f"fix the syntax at {where} of {file.path}; the other files were still examined",
        None, file.error_column,
    )


def _profile_missing(run: _Run, files: Iterable[ConfigFile]) -> Finding:
    name = run.req.profile
    path = run.codex_home / f"{name}.config.toml"
    user = next((f for f in files if f.kind == "user" and f.ok), None)
    legacy = user is not None and user.get(("profiles", name)) is not None
    extra = (f"; {user.path} has a legacy [profiles.{name}] table, which current Codex does not read"
             if legacy else "")
    return Finding(
        "profile-missing", "error",
        f"there is no profile file {path}: `codex -p {name}` silently runs with no profile (OpenAI's defaults){extra}",
        str(path), None, None, f"write it with `localcodex configure --profile {name}`",
        f"localcodex configure --profile {name}",
    )


DEFAULT_ROOTS = ("http://127.0.0.1:11434", "http://localhost:11434")
CONFIGURE_PROVIDER = "local_ollama"  # configure's default --provider-id


def configure_command(profile: str | None, *, provider: str | None = None, model: str | None = None,
                      host: str | None = None) -> str:
    """The `localcodex configure …` that rewrites a local Ollama provider's keys (base_url, wire_api, model,
    model_context_window) in a profile file, or with `--default` in config.toml.

    >>> configure_command("work", provider="my_ollama", model="qwen3.5:27b", host="http://gpu:11434")
    'localcodex configure --profile work --provider-id my_ollama --model qwen3.5:27b --host http://gpu:11434'
    >>> configure_command(None, provider="local_ollama", host="http://localhost:11434")
    'localcodex configure --default'
    """
    parts = ["localcodex configure", f"--profile {profile}" if profile else "--default"]
    if provider and provider != CONFIGURE_PROVIDER:
        parts.append(f"--provider-id {provider}")
    if model:
        parts.append(f"--model {model}")
    return " ".join(parts) + host_flag(host)


def host_flag(host: str | None) -> str:
    """` --host ROOT` when the Ollama server is not the default one, else nothing."""
    return f" --host {host.rstrip('/')}" if host and host.rstrip("/") not in DEFAULT_ROOTS else ""


def file_configure(file: ConfigFile, provider: str | None = None, host: str | None = None) -> str:
    """configure_command for a provider table in this file (the model too, when this file selects it)."""
    model = file.get(("model",)) if provider and file.get(("model_provider",)) == provider else None
    profile = file.profile if file.kind == "profile" else None
    return configure_command(profile, provider=provider, model=model if isinstance(model, str) else None, host=host)


def ollama_root(base_url: str) -> str:
    """Where Ollama lives for a /v1 base URL (what configure's --host takes).

    >>> ollama_root("http://localhost:11434/v1/v1/")
    'http://localhost:11434'
    """
    text = fixed_base_url(base_url)
    return text[: -len("/v1")] if text.endswith("/v1") else text


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
    return split.port == 11434 or (split.hostname or "") in ("localhost", "127.0.0.1", "::1")


_ENDPOINTS = ("/responses", "/chat/completions", "/completions", "/models")


def base_url_mistake(url: str) -> str | None:
    """The classic base_url mistake in a URL, judged from its text alone (None when it looks right).

    >>> base_url_mistake("http://localhost:11434/v1/v1")
    'doubled /v1'
    >>> base_url_mistake("http://localhost:11434")
    'missing /v1'
    >>> base_url_mistake("http://localhost:11434/v1/responses")
    'endpoint path'
    >>> base_url_mistake("https://openrouter.ai/api/v1") is None
    True
    >>> base_url_mistake("http://localhost:11434//v1"), fixed_base_url("http://localhost:11434//v1")
    ('double slash', 'http://localhost:11434/v1')
    """
    split = urllib.parse.urlsplit(url.strip())
    if split.scheme not in ("http", "https") or not split.hostname:
        return "not a URL"
    path = split.path.rstrip("/")
    if "//" in path:  # Ollama answers 301 to the cleaned path (server/routes.go ~2000, ~2018)
        return "double slash"
    if re.search(r"/v1/v1(/|$)", path):
        return "doubled /v1"
    if any(path.endswith(e) for e in _ENDPOINTS):
        return "endpoint path"
    if not re.search(r"/v1(/|$)", path) and (split.port == 11434 or not path):
        return "missing /v1"
    return None


def fixed_base_url(url: str) -> str:
    """The base URL with the mistake repaired (same rules as `check`'s suggestion).

    >>> fixed_base_url("http://localhost:11434/v1/v1/")
    'http://localhost:11434/v1'
    >>> fixed_base_url("localhost:11434")
    'http://localhost:11434/v1'
    """
    text = url.strip().rstrip("/")
    if "://" not in text:
        text = f"http://{text}"
    for suffix in _ENDPOINTS:
        if text.endswith(suffix):
            text = text[: -len(suffix)].rstrip("/")
    split = urllib.parse.urlsplit(text)
    path = re.sub(r"(/v1)+(?=/|$)", "/v1", re.sub(r"/{2,}", "/", split.path))
    if not re.search(r"/v1(/|$)", path):
        path = f"{path}/v1"
    return urllib.parse.urlunsplit((split.scheme, split.netloc, path, "", ""))


_MISTAKES = {
    "not a URL": "is not a URL Codex can use (it needs http:// or https:// and a host)",
    "doubled /v1": "has /v1 twice",
    "double slash": "has // in its path, which Ollama answers with a redirect (301) that the POST does not survive",
    "endpoint path": "ends with an endpoint path, but Codex appends /responses itself",
    "missing /v1": "lacks /v1, where Ollama serves its OpenAI-compatible API",
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
    mistake = base_url_mistake(base)
    if mistake is None:
        return
    good = fixed_base_url(base)
    posts = f"{base.strip().rstrip('/')}/responses"
    yield file.finding(
        "base-url-wrong", "error",
        f"base_url {base!r} {_MISTAKES[mistake]}: Codex would POST {posts}, which answers 404",
        (*key, "base_url"), f'set base_url = "{good}"', _local_configure(file, pid, table),
    )


def _secrets(file: ConfigFile, pid: str, table: Mapping[str, Any], key: tuple[str, ...]) -> Iterator[Finding]:
    token = table.get("experimental_bearer_token")
    if isinstance(token, str) and token.strip():
        yield file.finding(
            "secret-in-config", "warning",
            f"a bearer token is written literally in {file.path.name} ({mask(token)}): anyone who can read the "
            "file, a backup or a screen share has the key",
            (*key, "experimental_bearer_token"),
            f'delete it; put the key in an environment variable and reference it: env_key = "{_var_for(pid)}" '
            f"(and `export {_var_for(pid)}=…` in your shell start-up file)",
        )
    headers = table.get("http_headers")
    if isinstance(headers, Mapping):
        for header, value in headers.items():
            if isinstance(value, str) and looks_secret(value, str(header)):
                var = _var_for(pid, str(header))
                yield file.finding(
                    "secret-in-config", "warning",
                    f"http_headers.{header} looks like a secret written literally ({mask(value)})",
                    (*key, "http_headers", str(header)),
                    f'move it to env_http_headers = {{ "{header}" = "{var}" }} and `export {var}=…` '
                    "(Codex sends the header when the variable is set)",
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


# -- legacy profiles --------------------------------------------------------------------------------------------


def legacy_profile_findings(run: _Run, file: ConfigFile) -> Iterator[Finding]:
    current = codex_reads_profile_files(run)
    selector = file.get(("profile",))
    if isinstance(selector, str):
        yield _legacy_selector(run, file, selector, current)
    tables = file.get(("profiles",))
    if isinstance(tables, Mapping):
        for name in tables:
            yield _legacy_table(run, file, str(name), current)


def _legacy_selector(run: _Run, file: ConfigFile, name: str, current: bool) -> Finding:
    command = _legacy_command(file, name)
    if not current:
        return file.finding(
            "legacy-profile", "info",
            f"profile = {name!r} works with codex {run.codex_version}, but Codex 0.134 and later refuse to start "
            "with it", ("profile",), "after upgrading Codex, move the profile into its own file", command)
    codex_says = (f"legacy `profile = \"{name}\"` config is no longer supported; use `--profile {name}` with "
                  f"`{name}.config.toml` instead")
    return file.finding(
        "legacy-profile", "error", f"Codex refuses to start: {codex_says}", ("profile",),
        f"delete the `profile = \"{name}\"` line and run `codex -p {name}`; `{command}` writes {name}.config.toml"
        if command else "delete the `profile = …` line", command)


def _legacy_table(run: _Run, file: ConfigFile, name: str, current: bool) -> Finding:
    key = ("profiles", name)
    command = _legacy_command(file, name)
    if not current:
        return file.finding(
            "legacy-profile", "info",
            f"[profiles.{name}] works with codex {run.codex_version}, but Codex 0.134 and later ignore it",
            key, "after upgrading Codex, move it into its own profile file", command)
    profile_file = run.codex_home / f"{name}.config.toml"
    if profile_file.exists():
        codex_says = (f"--profile `{name}` cannot be used while {file.path} contains legacy `profile = \"{name}\"` "
                      f"or `[profiles.{name}]` config; move those settings into {profile_file} and remove the "
                      "legacy profile selector/table. See https://developers.openai.com/codex/config-advanced#profiles "
                      "for more information.")
        return file.finding(
            "legacy-profile", "error", f"`codex -p {name}` refuses to start: {codex_says}", key,
            f"delete the [profiles.{name}] table from {file.path.name} ({profile_file.name} replaces it)")
    return file.finding(
        "legacy-profile", "warning",
        f"[profiles.{name}] is ignored by Codex {run.codex_version or '0.134 and later'}: `codex -p {name}` silently "
        "runs without it (no error, OpenAI's defaults)", key,
        f"`{command}` writes {name}.config.toml, the form Codex reads now; then delete the [profiles.{name}] table "
        f"(Codex refuses -p {name} while both exist)" if command else "move the settings into a profile file",
        command)


def _legacy_command(file: ConfigFile, name: str) -> str | None:
    """configure writes the profile file; the model of the legacy table goes with it when there is one."""
    if not PROFILE_NAME.match(name):
        return None
    model = file.get(("profiles", name, "model"))
    return configure_command(name, model=model if isinstance(model, str) else None)


# -- project-local files ----------------------------------------------------------------------------------------


def project_findings(file: ConfigFile) -> Iterator[Finding]:
    data = file.data or {}
    for key in PROJECT_DENYLIST:
        if key not in data:
            continue
        if key == "model_providers" and isinstance(data[key], Mapping) and data[key]:
            for pid in data[key]:
                yield _ignored(file, ("model_providers", str(pid)))
        else:
            yield _ignored(file, (key,))
    for parent, child in PROJECT_DENYLIST_NESTED:
        if file.get((parent, child)) is not None:
            yield _ignored(file, (parent, child))
    if not file.trusted:
        root = file.path.parent.parent
        yield file.finding(
            "project-untrusted", "info",
            f"this project is not trusted, so Codex loads {file.path} but disables all of it",
            None, f"trust the project when Codex asks (or `codex exec --trust` in {root}) if it should apply")


def _ignored(file: ConfigFile, key: tuple[str, ...]) -> Finding:
    what = dotted(key)
    return file.finding(
        "project-local-ignored", "warning",
        f"`{what}` in a project-local .codex/config.toml has no effect: Codex ignores provider, auth and header "
        "settings there by design (a repository must not choose where your credentials are sent)",
        key,
        "move it to your user config ($CODEX_HOME/config.toml) or a profile file; `localcodex configure --profile "
        "NAME` writes one",
        None,
    )


# -- per target: what `codex` / `codex -p NAME` will do ---------------------------------------------------------


def target_findings(run: _Run, target: Target, files: tuple[ConfigFile, ...]) -> Iterator[Finding]:
    provider = target.merged.get("model_provider")
    if provider is None:
        yield from _no_provider(target)
        return
    if not isinstance(provider, str):
        return
    table = provider_table(target, provider)
    if provider == "ollama-chat":
        yield _located(target, ("model_provider",), "provider-missing", "error",
                       f"Codex refuses to start: {OLLAMA_CHAT_REMOVED}",
                       'set model_provider to your own provider id (e.g. "local_ollama")',
                       _configure_for(target))
    elif table is None and provider not in BUILT_IN_PROVIDERS:
        yield _provider_missing(run, target, provider, files)
    if table is not None and provider not in BUILT_IN_PROVIDERS:
        yield from _env_key_set(run, target, provider, table)
        yield from _env_headers_set(run, target, provider, table)
        if target.merged.get("model") is None:
            yield _located(
                target, ("model_provider",), "model-unset", "warning",
                f"{target.command} uses provider `{provider}` but no `model`: Codex asks it for OpenAI's default "
                "model, which a local server does not have",
                'add model = "NAME" (an installed model, `ollama list`)', _configure_for(target))


def provider_table(target: Target, pid: str) -> Mapping[str, Any] | None:
    tables = target.merged.get("model_providers")
    table = tables.get(pid) if isinstance(tables, Mapping) else None
    return table if isinstance(table, Mapping) else None


def _configure_for(target: Target) -> str:
    model = target.merged.get("model")
    return configure_command(target.profile, model=model if isinstance(model, str) else None)


def _located(target: Target, key: tuple[str, ...], id: str, severity: Any, message: str, fix: str,
             command: str | None = None) -> Finding:
    origin = target.origin(key) or (target.layers[-1] if target.layers else None)
    if origin is None:
        return Finding(id, severity, message, None, dotted(key), None, fix, command)
    return origin.finding(id, severity, message, key, fix, command)


def _no_provider(target: Target) -> Iterator[Finding]:
    model = target.merged.get("model")
    if target.profile and isinstance(model, str) and ":" in model:
        yield _located(
            target, ("model",), "provider-unset", "warning",
            f"{target.command} sets model {model!r}, which looks like an Ollama model, but no model_provider: "
            "Codex sends it to OpenAI", 'add model_provider = "local_ollama" (with its [model_providers] table)',
            _configure_for(target))


def _provider_missing(run: _Run, target: Target, provider: str, files: tuple[ConfigFile, ...]) -> Finding:
    message = f"`{target.command}` stops at once: Model provider `{provider}` not found"
    elsewhere = _defined_elsewhere(run, target, provider, files)
    defined = [pid for pid in (target.merged.get("model_providers") or {})]
    guess = closest(provider, [*defined, *BUILT_IN_PROVIDERS])
    if elsewhere is not None:
        message += f": [model_providers.{provider}] is in {elsewhere.path}, " + (
            "a project-local file, where Codex ignores provider tables" if elsewhere.kind == "project"
            else f"which {target.command} does not load")
        fix = f"move [model_providers.{provider}] into {target.layers[-1].path if target.profile else 'config.toml'}"
        if target.profile:
            fix = f"move [model_providers.{provider}] into {target.profile}.config.toml or config.toml"
    elif guess is not None:
        message += f"; did you mean `{guess}`?"
        fix = f'set model_provider = "{guess}"'
    else:
        known = ", ".join(defined) or "none"
        message += f"; this configuration defines: {known}"
        fix = f"add a [model_providers.{provider}] table, or point model_provider at one that exists"
    return _located(target, ("model_provider",), "provider-missing", "error", message, fix)


def _defined_elsewhere(run: _Run, target: Target, provider: str, files: tuple[ConfigFile, ...]) -> ConfigFile | None:
    loaded = {f.path for f in target.layers if f.kind != "project"}
    candidates = [*files, *getattr(run, "all_profiles", ())]
    return next((f for f in candidates if f.ok and f.path not in loaded
                 and isinstance(f.get(("model_providers", provider)), Mapping)), None)


def _env_key_set(run: _Run, target: Target, pid: str, table: Mapping[str, Any]) -> Iterator[Finding]:
    var = table.get("env_key")
    if not isinstance(var, str) or not ENV_NAME.match(var.strip()):
        return
    var = var.strip()
    if run.env.get(var, "").strip():
        return
    key = ("model_providers", pid, "env_key")
    blank = var in run.env
    state = "set but empty" if blank else "unset or not exported"
    message = (f"env_key names ${var}, which is {state} in this environment: {target.command} fails every turn with "
               f"`Missing environment variable: `{var}`.`")
    hint, fix = _shell_story(run, var)
    yield _located(target, key, "env-key-unset", "error", message + hint, fix)


def _shell_story(run: _Run, var: str) -> tuple[str, str]:
    """Why a variable is missing here, read from the shell start-up files: (message tail, fix)."""
    found = run.hostenv.shell_assignments(var)
    plain = [a for a in found if not a.exported]
    if plain:
        first = plain[0]
        where = f"{_tilde(run, first.file)}:{first.line}"
        return (f". It is assigned without `export` at {where}, so Codex (a child process) cannot see it",
                f"change {where} to `export {var}=…`, then open a new terminal")
    if found:
        where = f"{_tilde(run, found[0].file)}:{found[0].line}"
        return (f". It is exported at {where}, but not in the shell doctor ran from (a different shell, or one "
                "started before that line was added)",
                f"open a new terminal (or `source {_tilde(run, found[0].file)}`) before running Codex")
    return "", f"`export {var}=…` in your shell start-up file (e.g. ~/.bashrc or ~/.zshrc), then open a new terminal"


def _tilde(run: _Run, path: Path) -> str:
    try:
        return f"~/{path.relative_to(run.home).as_posix()}"
    except ValueError:
        return str(path)


def _env_headers_set(run: _Run, target: Target, pid: str, table: Mapping[str, Any]) -> Iterator[Finding]:
    headers = table.get("env_http_headers")
    if not isinstance(headers, Mapping):
        return
    for header, var in headers.items():
        if isinstance(var, str) and not run.env.get(var, "").strip():
            key = ("model_providers", pid, "env_http_headers", str(header))
            hint, fix = _shell_story(run, var)
            yield _located(
                target, key, "env-header-unset", "warning",
                f"env_http_headers.{header} reads ${var}, which is unset or not exported here: {target.command} "
                f"sends no {header} header, and a server that needs it refuses the request{hint}", fix)


# -- environment and machine ------------------------------------------------------------------------------------


def environment_findings(run: _Run, files: Iterable[ConfigFile]) -> None:
    run.add(*_origins_env(run))
    run.add(*_service_findings(run))
    run.add(*_file_mode_findings(run, files))


def _wildcard_origins(value: str) -> bool:
    return any(part.strip().strip("\"'") in ("*", "http://*", "https://*") for part in value.split(","))


def _origins_env(run: _Run) -> Iterator[Finding]:
    value = run.env.get("OLLAMA_ORIGINS", "")
    if _wildcard_origins(value):
        yield Finding(
            "ollama-origins-wildcard", "warning",
            f"OLLAMA_ORIGINS={value} in this environment: an Ollama started from it lets any website you visit "
            "call it from your browser", None, "OLLAMA_ORIGINS", None,
            "unset it, or list only the origins that need access (e.g. chrome-extension://ID)")


def _service_findings(run: _Run) -> Iterator[Finding]:
    settings = run.hostenv.service_environment()
    host = settings.get("OLLAMA_HOST")
    exposed = _exposed_bind(host.value) if host else None
    port = _service_port(host.value if host else None)
    if host is not None and exposed:
        yield Finding(
            "ollama-exposed", "warning",
            f"the Ollama service listens on {exposed}:{port} (Environment=OLLAMA_HOST={host.value}): anyone who can "
            "reach this machine can use it and pull or delete models (Ollama has no authentication)",
            str(host.file), "OLLAMA_HOST", host.line, _EXPOSED_FIX)
    else:
        yield from _socket_findings(run, port)
    origins = settings.get("OLLAMA_ORIGINS")
    if origins is not None and _wildcard_origins(origins.value):
        yield Finding(
            "ollama-origins-wildcard", "warning",
            f"the Ollama service allows every web origin (Environment=OLLAMA_ORIGINS={origins.value}): any website "
            "you visit can call your Ollama from the browser", str(origins.file), "OLLAMA_ORIGINS", origins.line,
            "remove OLLAMA_ORIGINS=* (or list only the origins that need it), then `sudo systemctl daemon-reload "
            "&& sudo systemctl restart ollama`")


_EXPOSED_FIX = (
    "bind it to loopback (OLLAMA_HOST=127.0.0.1:11434; `sudo systemctl edit ollama`, then "
    "`sudo systemctl restart ollama`), or keep port 11434 firewalled behind an authenticating reverse proxy"
)


def _exposed_bind(value: str) -> str | None:
    """The address an OLLAMA_HOST value binds when that is not loopback (`0.0.0.0`, `::`, a LAN address)."""
    import ipaddress

    text = value.strip().strip("\"'")
    if text.startswith(":"):
        return "0.0.0.0"
    host = urllib.parse.urlsplit(text if "://" in text else f"http://{text}").hostname or ""
    if host in ("", "localhost"):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a host name the service resolves: not loopback as far as we can tell
    return None if address.is_loopback else str(address)


def _service_port(value: str | None) -> int:
    if not value:
        return 11434
    text = value.strip().strip("\"'")
    try:
        split = urllib.parse.urlsplit(text if "://" in text else f"http://{text}")
        return split.port or 11434
    except ValueError:
        return 11434


def _socket_findings(run: _Run, service_port: int) -> Iterator[Finding]:
    from localcodex.paths import ollama_host

    host = ollama_host(run.req.host, run.env)
    if not host.is_local:
        return
    port = urllib.parse.urlsplit(host.native).port or service_port
    addresses = run.hostenv.listening_addresses(port) or ()
    exposed = [a for a in addresses if _exposed_bind(a if ":" not in a else f"[{a}]")]
    if exposed:
        shown = ", ".join(f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in exposed)
        yield Finding(
            "ollama-exposed", "warning",
            f"a server (Ollama, at the configured port) listens on {shown}: anyone who can reach this machine can "
            "use it (Ollama has no authentication)", None, "OLLAMA_HOST", None, _EXPOSED_FIX)


def _file_mode_findings(run: _Run, files: Iterable[ConfigFile]) -> Iterator[Finding]:
    for file in files:
        if file.kind == "project":
            continue
        mode = run.hostenv.file_mode(file.path)
        if mode is not None and mode & 0o077:
            yield _mode_finding(file.path, mode, _has_secret(file))
    auth = run.codex_home / "auth.json"
    if run.hostenv.exists(auth):
        mode = run.hostenv.file_mode(auth)
        if mode is not None and mode & 0o077:
            yield _mode_finding(auth, mode, True)


def _mode_finding(path: Path, mode: int, secret: bool) -> Finding:
    writable = bool(mode & 0o022)
    who = "other users can change it (and point Codex at their server)" if writable else "other users can read it"
    holds = " It holds credentials." if secret else ""
    return Finding(
        "config-permissions", "warning" if (secret or writable) else "info",
        f"{path.name} has mode {mode:04o}: {who}.{holds}", str(path), None, None,
        f"make it private: `chmod 600 {path}`", f"chmod 600 {path}")


def _has_secret(file: ConfigFile) -> bool:
    for _pid, table in providers_of(file):
        if isinstance(table.get("experimental_bearer_token"), str):
            return True
        headers = table.get("http_headers")
        if isinstance(headers, Mapping) and any(
            isinstance(v, str) and looks_secret(v, str(k)) for k, v in headers.items()
        ):
            return True
    return False

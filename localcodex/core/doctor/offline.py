"""The offline half of `doctor`: findings from config files, the environment and the installed Codex.

Each rule is a small function from what was read to findings; types.py holds the types, run.py the run,
providers.py the provider-table checks, environment.py the machine checks, fixes.py the suggested commands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from localcodex.core.doctor.fixes import configure_command
from localcodex.core.doctor.providers import provider_table_findings
from localcodex.core.doctor.types import (
    NPM_INSTALL,
    ConfigFile,
    DoctorRun,
    Finding,
    Target,
    closest,
    dotted,
)
from localcodex.domain.codex import (
    BUILT_IN_PROVIDERS,
    ENV_NAME,
    OLLAMA_CHAT_REMOVED,
    PROFILE_NAME,
    PROJECT_DENYLIST,
    PROJECT_DENYLIST_NESTED,
)
from localcodex.domain.urls import (
    parse_version,
    supports_profile_files,
)
from localcodex.errors import ConfigError

# -- reading ----------------------------------------------------------------------------------------------------


def read_files(run: DoctorRun) -> tuple[ConfigFile, ...]:
    """The files `codex` would load here: user config, profile files, project-local configs (root → cwd).

    With `--profile NAME` only that profile file is examined (the others are still read, for hints).
    """
    from localcodex.adapters import codex_files

    home = run.codex_home
    user_path, project_paths = codex_files.user_and_project_files(home, run.cwd)
    user = ConfigFile.from_parsed(codex_files.read_config(user_path, "user")) if user_path else None
    run.all_profiles = tuple(
        ConfigFile.from_parsed(codex_files.read_config(path, "profile", name))
        for name, path in codex_files.profile_files(home)
    )
    profiles = tuple(f for f in run.all_profiles if run.req.profile in (None, f.profile))
    projects = tuple(ConfigFile.from_parsed(codex_files.read_config(path, "project")) for path in project_paths)
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


def codex_home_findings(run: DoctorRun) -> None:
    """CODEX_HOME pointing at a folder that does not exist stops Codex before it reads anything."""
    explicit = run.env.get("CODEX_HOME", "").strip()
    if explicit and not run.codex_home.exists():
        run.add(Finding(
            "codex-home-missing", "error",
            f'Codex refuses to start: Error finding codex home: CODEX_HOME points to "{run.codex_home}", but that '
            "path does not exist", None, "CODEX_HOME", None,
            f"create the folder (`mkdir -p {run.codex_home}`) or unset CODEX_HOME (default ~/.codex)",
            f"mkdir -p {run.codex_home}"))


def journal_findings(run: DoctorRun, files: Iterable[ConfigFile]) -> None:
    """A change to two files that a killed localcodex run left half done (its journal is still there): Codex
    reads the files out of step until a localcodex run that locks their folder finishes it."""
    from localcodex.adapters import codex_changes, codex_write

    folders = {run.codex_home}
    for file in files:
        if file.kind in ("user", "profile"):
            with contextlib.suppress(ConfigError):  # a dangling link: reported elsewhere
                folders.add(codex_write.resolve_target(file.path).parent)
    for folder in sorted(folders, key=str):
        pending = codex_changes.pending_change(folder)
        if pending is not None:
            run.add(_journal_finding(run, pending))


def _journal_finding(run: DoctorRun, pending: Any) -> Finding:
    where = str(pending.journal)
    if pending.damaged:
        return Finding("journal-pending", "warning",
                       f"a localcodex journal that cannot be read is left in {pending.journal.parent}", where,
                       fix="look at the files beside it, then delete it (`rm " + where + "`); the next localcodex "
                           "command that changes Codex's files also removes it")
    names = ", ".join(path.name for path, _ in pending.files)
    if pending.running:
        return Finding("journal-pending", "info", f"a localcodex run is changing {names} right now", where,
                       fix="wait for it to finish, then run `localcodex doctor` again")
    behind = pending.out_of_step
    if not behind:
        return Finding("journal-pending", "info",
                       f"a localcodex run was interrupted after writing {names}, before removing its journal", where,
                       fix="nothing to do: the next localcodex command that changes Codex's files removes it")
    done = [path.name for path, state in pending.files if state == "new"]
    edited = [path.name for path, state in pending.files if state == "changed"]
    command = _last_command(run)
    message = (f"an interrupted `localcodex {command or 'configure'}` left its change half done: "
               + (f"{', '.join(done)} {'has' if len(done) == 1 else 'have'} the new content but " if done else "")
               + f"{', '.join(p.name for p in behind)} still {'has' if len(behind) == 1 else 'have'} the old one, "
               "so Codex reads them out of step")
    if edited:
        message += f" ({', '.join(edited)} was edited since and will be left as it is)"
    return Finding(
        "journal-pending", "warning", message, where,
        fix="the next localcodex command that changes Codex's files finishes the change before anything else: run "
            f"the interrupted `localcodex {command or 'configure'} …` again to finish it, or undo it whole with "
            "`localcodex configure --restore` (both files as they were before it)",
        fix_command="localcodex configure --restore")


def _last_command(run: DoctorRun) -> str | None:
    """The command of the last change localcodex recorded (the interrupted one: it is recorded before writing)."""
    from localcodex.adapters.codex_changes import BackupStore
    from localcodex.paths import backups_dir

    with contextlib.suppress(ConfigError, OSError):
        runs = BackupStore(backups_dir(run.env)).runs()
        return runs[-1].command if runs else None
    return None


# -- Codex itself -----------------------------------------------------------------------------------------------


def codex_findings(run: DoctorRun, files: Iterable[ConfigFile]) -> None:
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
    version = parse_version(run.codex_version)
    if version is None or supports_profile_files(version):
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


def codex_reads_profile_files(run: DoctorRun) -> bool:
    """Profile files and no legacy profiles: true for current Codex, and when the version is unknown."""
    return supports_profile_files(parse_version(run.codex_version))


# -- config files -----------------------------------------------------------------------------------------------


def config_findings(run: DoctorRun, files: tuple[ConfigFile, ...], targets: tuple[Target, ...]) -> None:
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


def _profile_missing(run: DoctorRun, files: Iterable[ConfigFile]) -> Finding:
    name = run.req.profile or ""
    path = run.codex_home / f"{name}.config.toml"
    user = next((f for f in files if f.kind == "user" and f.ok), None)
    legacy = user is not None and user.get(("profiles", name)) is not None
    extra = (f"; {user.path} has a legacy [profiles.{name}] table, which current Codex does not read"
             if user is not None and legacy else "")
    return Finding(
        "profile-missing", "error",
        f"there is no profile file {path}: `codex -p {name}` silently runs with no profile (OpenAI's defaults){extra}",
        str(path), None, None, f"write it with `localcodex configure --profile {name}`",
        f"localcodex configure --profile {name}",
    )


# -- legacy profiles --------------------------------------------------------------------------------------------


def legacy_profile_findings(run: DoctorRun, file: ConfigFile) -> Iterator[Finding]:
    current = codex_reads_profile_files(run)
    selector = file.get(("profile",))
    if isinstance(selector, str):
        yield _legacy_selector(run, file, selector, current)
    tables = file.get(("profiles",))
    if isinstance(tables, Mapping):
        for name in tables:
            yield _legacy_table(run, file, str(name), current)


def _legacy_selector(run: DoctorRun, file: ConfigFile, name: str, current: bool) -> Finding:
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


def _legacy_table(run: DoctorRun, file: ConfigFile, name: str, current: bool) -> Finding:
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


def target_findings(run: DoctorRun, target: Target, files: tuple[ConfigFile, ...]) -> Iterator[Finding]:
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


def _provider_missing(run: DoctorRun, target: Target, provider: str, files: tuple[ConfigFile, ...]) -> Finding:
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


def _defined_elsewhere(
    run: DoctorRun, target: Target, provider: str, files: tuple[ConfigFile, ...]
) -> ConfigFile | None:
    loaded = {f.path for f in target.layers if f.kind != "project"}
    candidates = [*files, *getattr(run, "all_profiles", ())]
    return next((f for f in candidates if f.ok and f.path not in loaded
                 and isinstance(f.get(("model_providers", provider)), Mapping)), None)


def _env_key_set(run: DoctorRun, target: Target, pid: str, table: Mapping[str, Any]) -> Iterator[Finding]:
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


def _shell_story(run: DoctorRun, var: str) -> tuple[str, str]:
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


def _tilde(run: DoctorRun, path: Path) -> str:
    try:
        return f"~/{path.relative_to(run.home).as_posix()}"
    except ValueError:
        return str(path)


def _env_headers_set(run: DoctorRun, target: Target, pid: str, table: Mapping[str, Any]) -> Iterator[Finding]:
    headers = table.get("env_http_headers")
    if not isinstance(headers, Mapping):
        return
    for header, var in headers.items():
        if isinstance(var, str) and ENV_NAME.match(var) and not run.env.get(var, "").strip():  # else: providers.py
            key = ("model_providers", pid, "env_http_headers", str(header))
            hint, fix = _shell_story(run, var)
            yield _located(
                target, key, "env-header-unset", "warning",
                f"env_http_headers.{header} reads ${var}, which is unset or not exported here: {target.command} "
                f"sends no {header} header, and a server that needs it refuses the request{hint}", fix)

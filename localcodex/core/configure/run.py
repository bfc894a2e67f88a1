"""configure's run: validate, resolve the model, plan every file change under the lock, commit; and restore."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from localcodex.core.configure.catalog import catalog_file
from localcodex.core.configure.edits import (
    auto_compact_limit,
    is_local_url,
    legacy_edits,
    profile_edits,
    profile_header,
    provider_edits,
    provider_table,
    session_keys,
)
from localcodex.core.configure.model import ModelFacts, context_warnings, resolve_model
from localcodex.core.configure.types import ConfigureRequest, ConfigureResult, Progress, RestoreResult, WrittenFile
from localcodex.core.configure.validate import validate_request
from localcodex.core.ports import Live
from localcodex.domain.secrets import config_secrets
from localcodex.domain.urls import supports_profile_files
from localcodex.errors import ConfigError


def _noop(_: str) -> None:
    pass


def configure(req: ConfigureRequest, live: Live, on_progress: Progress | None = None) -> ConfigureResult:
    """Write (or with `dry_run`, show) the Codex profile for `req`. Idempotent: the same request twice
    changes nothing the second time (no write, no backup, `changed=False`)."""
    from localcodex.adapters import codex_cli

    progress = on_progress or _noop
    codex_home, base_url = validate_request(req, live)
    codex = codex_cli.codex_info(env=live.inv.env)
    form, warnings = _form(req, codex, base_url)
    facts = resolve_model(req, live, progress)
    warnings += [*facts.warnings, *context_warnings(facts.context)]
    _ensure_home(codex_home, req)
    catalog = catalog_file(req, codex, facts, codex_home, progress)
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
        from localcodex.adapters.codex_write import make_private_dir

        make_private_dir(codex_home)


def _write(req: ConfigureRequest, live: Live, facts: ModelFacts, base_url: str, form: str, codex_home: Path,
           catalog: tuple[Path, str, str] | None) -> tuple[tuple[WrittenFile, ...], str | None, list[str]]:
    """Under the lock: compute every change from what is on disk now, check conflicts, commit."""
    from localcodex.adapters import codex_changes, codex_config, codex_lock

    config_path = codex_home / "config.toml"
    profile_file = codex_config.profile_path(codex_home, req.profile)
    store = codex_changes.BackupStore(live.inv.backups_dir)
    if not req.dry_run:
        store.ensure()
    targets = [config_path, profile_file, store.index_path, *([catalog[0]] if catalog else [])]
    with codex_lock.locked(targets) as recovered:
        planned = _plan(req, facts, base_url, form, config_path, profile_file,
                        catalog[0] if catalog else None, catalog[1] if catalog else None)
        warnings = [*recovered, *_conflicts(req, form, config_path)]
        done = None if req.dry_run else codex_changes.commit(req.command, [c for _, c in planned], store,
                                                            force=req.force)
    files = tuple(WrittenFile(role, c.path, c.target, c.created, c.changed, c.diff()) for role, c in planned)
    warnings += [f"{f.path} is a symlink: wrote its target {f.target}" for f in files if f.path != f.target]
    if not req.dry_run:
        warnings += keep_private([c for _, c in planned])
    return files, done.backup.id if done and done.backup else None, warnings


def _plan(req: ConfigureRequest, facts: ModelFacts, base_url: str, form: str, config_path: Path,
          profile_file: Path, catalog_path: Path | None, catalog_text: str | None) -> list[tuple[str, Any]]:
    """Every file change of this run, computed from what is on disk now (under the lock)."""
    from localcodex.adapters import codex_changes

    planned: list[tuple[str, Any]] = []
    if catalog_path and catalog_text:
        planned.append(("model_catalog", codex_changes.plan_change(catalog_path, catalog_text)))
    config_edits: dict[tuple[str, ...], Any] = {}
    if form == "profile_file":
        edits = profile_edits(req, facts, base_url, catalog_path)
        planned.append(("profile", codex_changes.plan_edits(profile_file, edits, header=profile_header(req))))
    else:
        config_edits.update(legacy_edits(req, facts, base_url, catalog_path))
    if req.make_default:
        config_edits.update(session_keys(facts.model, req.provider_id, facts.context, is_local_url(base_url)))
        config_edits.update(provider_edits(req.provider_id, provider_table(req, base_url)))
    if config_edits:
        planned.append(("config", codex_changes.plan_edits(config_path, config_edits)))
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


def keep_private(changes: Iterable[Any]) -> list[str]:
    """A Codex config that holds a credential (domain.secrets; localcodex never writes one, but a user may have)
    must not be readable by other users. A file this run wrote loses its group and other permissions (never
    gains any), and the warning says so; one it only read gets a warning with the `chmod` to run."""
    from localcodex.adapters import codex_write, toml_edit

    notes = []
    for change in changes:
        if change.new is None or change.target.suffix != ".toml":
            continue
        try:
            holds = bool(config_secrets(toml_edit.load_plain(change.new, change.target)))
        except ConfigError:
            continue
        mode = codex_write.file_mode(change.target)
        if not holds or mode is None or not mode & 0o077:
            continue
        chmod = f"chmod {(mode & 0o700) >> 6}00 {change.target}"
        said = f"{change.target} holds credentials and other users can read it (mode {mode:04o})"
        if not change.changed:
            notes.append(f"{said}: make it private with `{chmod}`")
            continue
        try:
            new = codex_write.remove_group_other(change.target)
        except ConfigError:
            notes.append(f"{said}, and localcodex could not change that: run `{chmod}`")
            continue
        notes.append(f"{said.replace('can read it', 'could read it')}: localcodex made it {new:04o} "
                     f"(what `{chmod}` does)")
    return notes


def restore(live: Live, *, force: bool = False, dry_run: bool = False) -> RestoreResult:
    """Undo the last localcodex change to Codex's files (configure, provider add…)."""
    from localcodex.adapters import codex_changes, codex_lock

    store = codex_changes.BackupStore(live.inv.backups_dir)
    targets = [Path(f.path) for f in store.last().files]
    with codex_lock.locked([*targets, store.index_path]):
        done = codex_changes.restore_last(store, force=force, dry_run=dry_run)
    files = tuple(
        WrittenFile("restored", c.path, c.target, c.created, c.changed, c.diff()) for c in done.changes
    )
    warnings = () if dry_run else tuple(keep_private(done.changes))
    return RestoreResult(done.run.id, done.run.time, done.run.command, files, dry_run, warnings)

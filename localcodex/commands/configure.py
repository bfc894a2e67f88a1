"""`localcodex configure`: write the Codex profile for the local model (or undo the last change)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.core.configure import ConfigureResult, RestoreResult
    from localcodex.render.output import Output

R = TypeVar("R", "ConfigureResult", "RestoreResult")


def register(app: typer.Typer) -> None:
    app.command("configure")(configure_command)


def configure_command(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name on the server.")] = None,
    context: Annotated[int | None, typer.Option(
        "--context", help="Context window in tokens (the model's num_ctx; read from Ollama when omitted).")] = None,
    host: options.Host = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="Any OpenAI-compatible server (must serve /responses) instead of Ollama.")] = None,
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile name: `codex -p NAME`.")] = "local_ollama",
    provider_id: Annotated[str, typer.Option(
        "--provider-id", help="Id of the [model_providers.ID] table.")] = "local_ollama",
    provider_name: Annotated[str | None, typer.Option("--provider-name", help="Display name.")] = None,
    env_key: Annotated[str | None, typer.Option(
        "--env-key", help="NAME of the variable holding the API key (the key is never written).")] = None,
    header: Annotated[list[str] | None, typer.Option(
        "--header", metavar="NAME=VALUE", help="Static header NAME=VALUE (not for secrets). Repeatable.")] = None,
    env_header: Annotated[list[str] | None, typer.Option(
        "--env-header", metavar="NAME=VAR",
        help="Header NAME=VARIABLE: Codex sends the variable's value. Repeatable.")] = None,
    model_catalog: Annotated[bool | None, typer.Option(
        "--model-catalog/--no-model-catalog", help="Also write a model catalog with the real context window "
        "(replaces Codex's built-in catalog for this profile). Default: keep the one the profile has, as "
        "setup wrote it.", show_default=False)] = None,
    instructions: Annotated[Path | None, typer.Option(
        "--instructions", help="System prompt file for --model-catalog (default: Codex's own prompt).")] = None,
    default: Annotated[bool, typer.Option(
        "--default", help="Also make it the default in $CODEX_HOME/config.toml (rest of the file kept).")] = False,
    codex_home: Annotated[Path | None, typer.Option(
        "--codex-home", help="Codex's folder (default: $CODEX_HOME or ~/.codex).")] = None,
    idle_timeout: Annotated[int, typer.Option(
        "--idle-timeout", help="Seconds Codex waits for the next token before giving up.")] = 600,
    restore: Annotated[bool, typer.Option(
        "--restore", help="Undo the last change localcodex made to Codex's files.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace a read-only config file; with --restore: even over later hand edits.")] = False,
    yes: options.Yes = False,
    dry_run: options.DryRun = False,
    json_: options.Json = False,
) -> None:
    """Write the Codex profile for a local model: `codex -p local_ollama` then just works."""
    del yes  # configure asks nothing; `--yes` is accepted so that it works with every command
    from localcodex.render.output import run_command
    from localcodex.wiring import live

    if restore:
        from localcodex.core.configure import restore as do_restore

        run_command("configure", json_, lambda out: warn_all(out, do_restore(live(), force=force, dry_run=dry_run)),
                    render_restore)

    from localcodex.core.configure import ConfigureRequest, configure

    def body(out):
        req = ConfigureRequest(
            model=model, context=context, host=host, base_url=base_url, profile=profile,
            provider_id=provider_id, provider_name=provider_name, env_key=env_key,
            http_headers=pairs(header, "--header"), env_http_headers=pairs(env_header, "--env-header"),
            model_catalog=model_catalog, instructions_file=instructions, make_default=default, dry_run=dry_run,
            stream_idle_timeout_ms=idle_timeout * 1000, codex_home=codex_home, force=force,
        )
        return warn_all(out, configure(req, live(), on_progress=progress(out)))

    run_command("configure", json_, body, render)


def warn_all(out: Output, result: R) -> R:
    """Warnings go through `out.warn`: stderr for people, the envelope's `warnings` in JSON mode."""
    for warning in result.warnings:
        out.warn(warning)
    return result


def pairs(values: list[str] | None, option: str) -> tuple[tuple[str, str], ...]:
    """`NAME=VALUE` options as pairs; a missing `=` is a usage error."""
    from localcodex.domain.codex import looks_secret, mask
    from localcodex.errors import UsageError

    out = []
    for value in values or []:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip():
            shown = mask(value) if looks_secret(value) or looks_secret(value.split()[-1] if value.split() else "") \
                else value  # `--header 'Bearer sk-…'` without its name: the key is not echoed
            raise UsageError(f"{option} {shown!r}: expected NAME=VALUE", f"e.g. {option} X-Team=platform")
        out.append((name.strip(), rest.strip()))
    return tuple(out)


def progress(out):
    def report(message: str) -> None:
        out.note(f"[dim]{message}…[/dim]")
        out.event("progress", message=message)

    return report


def render(out: Output, result: ConfigureResult) -> None:
    from rich.markup import escape

    if result.dry_run:
        diffs = [f.diff for f in result.files if f.changed]
        for diff in diffs:
            write_raw(out, diff)
        out.note("dry run: nothing was written" if diffs else "dry run: nothing would change")
        return
    render_files(out, result.files)
    ctx = f"{result.context_window} tokens ({result.context_source})" if result.context_window else "not set"
    out.out.print(f"model [bold]{escape(result.model)}[/bold] via {escape(result.base_url)}, context {ctx}")
    if result.backup_id:
        out.note(f"backup {result.backup_id} (undo with `localcodex configure --restore`)")
    out.out.print(f"run: [bold]{escape(result.run)}[/bold]")


def write_raw(out: Output, text: str) -> None:
    """Diffs and files go to stdout byte for byte (no wrapping, no markup), so they can be applied or piped."""
    out.out.file.write(text)
    out.out.file.flush()


def render_files(out, files) -> None:
    from rich.markup import escape

    for f in files:
        state = "created" if f.created else "updated" if f.changed else "unchanged"
        out.out.print(f"{state:>9}  {escape(str(f.path))}")


def render_restore(out: Output, result: RestoreResult) -> None:
    from rich.markup import escape

    verb = "would restore" if result.dry_run else "restored"
    out.out.print(f"{verb} the files changed by `localcodex {escape(result.command)}` at {result.backup_time}:")
    for f in result.files:
        state = "deleted" if f.changed and f.diff and "+++ /dev/null" in f.diff else (
            "restored" if f.changed else "unchanged")
        out.out.print(f"{state:>9}  {escape(str(f.path))}")
        if result.dry_run and f.diff:
            write_raw(out, f.diff)

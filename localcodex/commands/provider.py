"""`localcodex provider list|show|add`: provider templates, and profiles written from them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.core.providers import ProviderAddResult, Template, TemplateList
    from localcodex.render.output import Output


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Provider templates: Ollama, llama.cpp, LM Studio, GLM, Mistral, OpenRouter, a gateway.",
                      no_args_is_help=True)
    sub.command("list")(list_command)
    sub.command("show")(show_command)
    sub.command("add")(add_command)
    app.add_typer(sub, name="provider")


def list_command(json_: options.Json = False) -> None:
    """List the provider templates."""
    from localcodex.core.providers import list_templates
    from localcodex.render.output import run_command

    run_command("provider list", json_, lambda out: list_templates(), render_list)


def show_command(
    name: Annotated[str, typer.Argument(help="Template name (see `provider list`).")],
    json_: options.Json = False,
) -> None:
    """Show one template: its variables and the file itself."""
    from localcodex.core.providers import get_template
    from localcodex.render.output import run_command

    run_command("provider show", json_, lambda out: get_template(name), render_show)


def add_command(
    name: Annotated[str, typer.Argument(help="Template name (see `provider list`).")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name on that server.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="The server's /v1 URL.")] = None,
    env_key: Annotated[str | None, typer.Option(
        "--env-key", help="NAME of the variable holding the API key (the key is never written).")] = None,
    context: Annotated[int | None, typer.Option("--context", help="Context window in tokens.")] = None,
    host: options.Host = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile name: `codex -p NAME`.")] = None,
    provider_id: Annotated[str | None, typer.Option("--provider-id", help="[model_providers.ID]")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="NAME=VALUE",
        help="Template variable NAME=VALUE (e.g. --set team=platform). Repeatable.")] = None,
    model_catalog: Annotated[bool, typer.Option("--model-catalog", help="Also write a model catalog.")] = False,
    instructions: Annotated[Path | None, typer.Option(
        "--instructions", help="System prompt file for --model-catalog.")] = None,
    default: Annotated[bool, typer.Option("--default", help="Also make it Codex's default.")] = False,
    codex_home: Annotated[Path | None, typer.Option("--codex-home", help="Codex's folder.")] = None,
    dry_run: options.DryRun = False,
    json_: options.Json = False,
) -> None:
    """Write a Codex profile from a template (same safe writer as `configure`)."""
    from localcodex.commands.configure import pairs, progress, warn_all
    from localcodex.core.providers import ProviderAddRequest, add_provider
    from localcodex.render.output import run_command
    from localcodex.wiring import live

    def body(out):
        req = ProviderAddRequest(
            template=name, model=model, context=context, base_url=base_url, env_key=env_key, host=host,
            profile=profile, provider_id=provider_id, variables=pairs(set_, "--set"),
            model_catalog=model_catalog, instructions_file=instructions, make_default=default,
            dry_run=dry_run, codex_home=codex_home,
        )
        added = add_provider(req, live(), on_progress=progress(out))
        warn_all(out, added.result)
        return added

    run_command("provider add", json_, body, render_add)


def render_list(out: Output, listing: TemplateList) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("template", style="bold")
    table.add_column("needs")
    table.add_column("description")
    for t in listing.templates:
        needs = ", ".join(r for r in t.required if r not in t.defaults) or "-"
        table.add_row(t.name, needs, t.description)
    out.out.print(table)


def render_show(out: Output, template: Template) -> None:
    from rich.markup import escape

    out.out.print(f"[bold]{template.name}[/bold]: {escape(template.description)}")
    needs = [f"{r} (default {template.defaults[r]!r})" if r in template.defaults else r for r in template.required]
    out.out.print(f"needs: {escape(', '.join(needs)) or '-'}")
    if template.notes:
        out.out.print(escape(template.notes))
    out.out.print(f"\n[dim]{escape(str(template.path))}[/dim]")
    from localcodex.commands.configure import write_raw

    write_raw(out, template.text)


def render_add(out: Output, added: ProviderAddResult) -> None:
    from rich.markup import escape

    from localcodex.commands.configure import render

    render(out, added.result)
    if added.notes and not added.result.dry_run:
        out.note(escape(added.notes))

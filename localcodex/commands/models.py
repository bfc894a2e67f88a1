"""`localcodex models …`: what is installed, context variants, and moving models without a registry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from collections.abc import Sequence

    from localcodex.core.models import ModelRow
    from localcodex.core.transfer.run import BundleImportResult, ExportResult, GGUFImportResult
    from localcodex.core.variant import ContextVariant
    from localcodex.render.output import Outcome, Output

models_app = typer.Typer(
    name="models", help="Installed models: list, context variants, import/export without a registry.",
    no_args_is_help=True,
)

# Seconds of silence tolerated from Ollama while it reads a large upload or loads a model.
SLOW_TIMEOUT = 900.0


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


@models_app.command("list")
def list_command(host: options.Host = None, json_: options.Json = False) -> None:
    """Installed models with size, context (num_ctx), capabilities and quantization."""
    from localcodex.render.output import run_command

    def body(out):
        from localcodex.core.models import list_models
        from localcodex.wiring import live

        lv = live(host, json=json_)
        return list_models(lv.ollama(), lv.inv.codex_home)

    run_command("models list", json_, body, render_list)


def render_list(out: Output, rows: Sequence[ModelRow]) -> None:
    from rich.table import Table

    from localcodex.render.output import human_bytes

    if not rows:
        out.note("no models installed; get one with `localcodex pull MODEL` or `localcodex setup`")
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("model", no_wrap=True)  # a name is copied into commands: never cut it
    for column in ("size", "context", "trained"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("quant", no_wrap=True)
    table.add_column("params", no_wrap=True)
    table.add_column("capabilities", overflow="fold", min_width=12)
    table.add_column("codex profile", overflow="fold")
    for row in rows:
        table.add_row(
            row.name, human_bytes(row.size, decimal=True), str(row.num_ctx) if row.num_ctx else "default",
            str(row.trained_context or "?"), row.quantization or "?", row.parameter_size or "?",
            ", ".join(row.capabilities) or "?", ", ".join(f"-p {p}" if p != "(default)" else p
                                                       for p in row.profiles),
        )
    print_unclipped(out.out, table)


@models_app.command("prune")
def prune_command(
    host: options.Host = None,
    yes: options.Yes = False,
    dry_run: options.DryRun = False,
    json_: options.Json = False,
) -> None:
    """Remove the context variants localcodex made that no Codex profile uses (asks first)."""
    from localcodex.render.output import run_command

    def body(out):
        from localcodex.core.models import prunable, prune
        from localcodex.errors import LocalcodexError
        from localcodex.wiring import live

        lv = live(host, json=json_)
        server = lv.ollama()
        found = prunable(server, lv)
        if dry_run or not found.removed:
            return found
        question = "Remove " + ", ".join(found.removed) + " (no Codex profile uses them)?"
        if not out.confirm(question, default=True, assume_yes=yes):
            raise LocalcodexError("nothing removed: not confirmed", "run `localcodex models prune --yes`",
                                  code="declined")
        return prune(server, found, lv)

    run_command("models prune", json_, body, render_prune)


def render_prune(out, result) -> None:
    verb = "would remove" if result.dry_run else "removed"
    if not result.removed:
        out.out.print("nothing to remove: every context variant localcodex made is used by a Codex profile",
                      markup=False, highlight=False)
    for name in result.removed:
        out.out.print(f"{verb} {name}", markup=False, highlight=False)
    for name, why in result.kept:
        out.out.print(f"kept {name} ({why})", markup=False, highlight=False)


def print_unclipped(console, renderable) -> None:
    """Piped output has no screen to fit: give the table the width it needs, so no name is cut."""
    from rich.measure import Measurement

    if console.is_terminal:
        console.print(renderable)
        return
    saved = console.width
    console.width = max(saved, Measurement.get(console, console.options.update_width(1000), renderable).maximum)
    try:
        console.print(renderable)
    finally:
        console.width = saved


@models_app.command("context")
def context_command(
    model: Annotated[str, typer.Argument(help="Installed base model, e.g. qwen3.5:27b.")],
    ctx: Annotated[int, typer.Option("--ctx", help="Context size in tokens to bake in, e.g. 65536.")],
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Do not load the model to verify it.")] = False,
    host: options.Host = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0.1, help="Total seconds the work on the server may take (exit 10 past it; default: each "
        "step's own limit).")] = None,
    json_: options.Json = False,
) -> None:
    """Create (or reuse) MODEL-ctxNk carrying num_ctx=N, then load it and verify the context in /api/ps."""
    from localcodex.render.output import run_command

    def body(out):
        from localcodex.adapters.ollama import OllamaServer
        from localcodex.core.variant import make_context_variant

        server = OllamaServer(host, timeout=min(SLOW_TIMEOUT, timeout or SLOW_TIMEOUT))
        with server.deadline(timeout, f"models context {model}"):
            result = make_context_variant(server, model, ctx, verify=not no_verify)
        for warning in (*result.variant.warnings, *(result.verification.warnings if result.verification else ())):
            out.warn(warning)
        if result.verification is not None and result.verification.status == "unverifiable":
            out.warn(result.verification.message)
        return result

    run_command("models context", json_, body, render_context, judge_context)


def judge_context(result: ContextVariant) -> Outcome:
    from localcodex.errors import ExitCode
    from localcodex.render.output import ErrorItem, Outcome

    check = result.verification
    if check is None or check.status in ("ok", "unverifiable"):
        return Outcome()
    item = ErrorItem("context_mismatch" if check.status == "mismatch" else "not_loaded", check.message,
                     "check OLLAMA_CONTEXT_LENGTH / server logs; the variant's num_ctx is "
                     f"{result.variant.num_ctx}")
    return Outcome(ExitCode.CHECK_FAILED, (item,))


def render_context(out: Output, result: ContextVariant) -> None:
    variant, check = result.variant, result.verification
    verb = {"created": "created", "updated": "re-created", "unchanged": "already there:"}[variant.action]
    out.out.print(f"{verb} {variant.name} (from {variant.base}, num_ctx {variant.num_ctx})", markup=False,
                  highlight=False)
    if check is not None and check.status != "unverifiable":
        mark = "ok" if check.ok else "FAILED"
        out.out.print(f"verify: {mark}: {check.message}", markup=False, highlight=False)
    if check is not None and not check.ok and check.status != "unverifiable":
        out.err.print(f"[bold red]error:[/bold red] {check.message}")


@models_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A GGUF model file.")],
    name: Annotated[str, typer.Option("--name", help="Name for the model in Ollama, e.g. my-coder:7b.")],
    ctx: Annotated[int | None, typer.Option("--ctx", help="Bake this context size (num_ctx) in.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a model of the same name.")] = False,
    host: options.Host = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0.1, help="Total seconds the work on the server may take (exit 10 past it; default: each "
        "step's own limit).")] = None,
    json_: options.Json = False,
) -> None:
    """Import a GGUF file as an Ollama model (reads its header first; uploads only if the server lacks it)."""
    from localcodex.render.output import run_command

    def body(out):
        from localcodex.core.transfer.run import import_gguf_here
        from localcodex.render.progress import transfer_display
        from localcodex.wiring import live

        with transfer_display(out) as on_progress:
            result = import_gguf_here(live(host), file, name, ctx, force=force, on_progress=on_progress,
                                      timeout=SLOW_TIMEOUT, limit=timeout)
        for warning in result.warnings:
            out.warn(warning)
        return result

    run_command("models import", json_, body, render_import)


def render_import(out: Output, result: GGUFImportResult) -> None:
    from localcodex.render.output import human_bytes

    g = result.gguf
    facts = [
        g.architecture or "?", f"{g.parameter_count / 1e9:.2f}B parameters" if g.parameter_count else "",
        g.quantization or "", f"trained context {g.context_length}" if g.context_length else "",
        "chat template" if g.has_chat_template else "no chat template",
    ]
    out.out.print(f"imported {result.name} from {Path(g.path).name} ({human_bytes(result.size, decimal=True)}"
                  f"{'' if result.uploaded else ', blob already on the server'})", markup=False, highlight=False)
    out.out.print("  " + " · ".join(f for f in facts if f), markup=False, highlight=False)
    if result.num_ctx:
        out.out.print(f"  num_ctx {result.num_ctx}", markup=False, highlight=False)
    if result.capabilities:
        out.out.print(f"  capabilities: {', '.join(result.capabilities)}", markup=False, highlight=False)
    if result.fit is not None:
        fit = result.fit
        where = {"unified": "in unified memory", "gpu": "on the GPU", "multi_gpu": "across the GPUs",
                 "cpu": "in RAM (CPU)", "partial": f"{round(100 * fit.gpu_fraction)}% on the GPU",
                 "none": "does not fit"}.get(fit.placement, fit.placement)
        out.out.print(f"  fit: {human_bytes(fit.need_bytes)} at {fit.num_ctx} tokens of context, {where}",
                      markup=False, highlight=False)


@models_app.command("export")
def export_command(
    name: Annotated[str, typer.Argument(help="Installed model to export.")],
    to: Annotated[Path, typer.Option("--to", help="Bundle file to write, e.g. qwen.tar.")],
    models_dir: Annotated[
        Path | None,
        typer.Option("--models-dir", help="Ollama's model folder (default: $OLLAMA_MODELS or ~/.ollama/models)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the bundle file if it exists.")] = False,
    json_: options.Json = False,
) -> None:
    """Write an installed model (manifest and every blob, with checksums) into one tar for another machine."""
    from localcodex.render.output import run_command

    def body(out):
        from localcodex.core.transfer.run import export_bundle
        from localcodex.paths import ollama_models_dir
        from localcodex.render.progress import transfer_display

        with transfer_display(out) as on_progress:
            return export_bundle(models_dir or ollama_models_dir(), name, to, overwrite=force,
                                 on_progress=on_progress)

    run_command("models export", json_, body, render_export)


def render_export(out: Output, result: ExportResult) -> None:
    from localcodex.render.output import human_bytes

    out.out.print(f"exported {result.name} to {result.path} ({human_bytes(result.size, decimal=True)}, "
                  f"{result.blobs} blobs); on the other machine: localcodex models import-bundle "
                  f"{Path(result.path).name}", markup=False, highlight=False)


@models_app.command("import-bundle")
def import_bundle_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle written by `localcodex models export`.")],
    name: Annotated[str | None, typer.Option("--name", help="Install under this name instead.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a model of the same name.")] = False,
    models_dir: Annotated[
        Path | None, typer.Option("--models-dir", help="Ollama's model folder, for layers the API cannot rebuild.")
    ] = None,
    host: options.Host = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0.1, help="Total seconds the work on the server may take (exit 10 past it; default: each "
        "step's own limit).")] = None,
    json_: options.Json = False,
) -> None:
    """Install a model from a bundle: every checksum is verified before anything is installed."""
    from localcodex.render.output import run_command

    def body(out):
        from localcodex.adapters.ollama import OllamaServer
        from localcodex.core.transfer.run import import_bundle
        from localcodex.render.progress import transfer_display

        server = OllamaServer(host, timeout=min(SLOW_TIMEOUT, timeout or SLOW_TIMEOUT))
        with transfer_display(out) as on_progress, server.deadline(timeout, f"importing {bundle.name}"):
            result = import_bundle(server, bundle, name=name, force=force, models_dir=models_dir,
                                   on_progress=on_progress)
        for warning in result.warnings:
            out.warn(warning)
        return result

    run_command("models import-bundle", json_, body, render_bundle_import)


def render_bundle_import(out: Output, result: BundleImportResult) -> None:
    from localcodex.render.output import human_bytes

    renamed = f" (was {result.source_name})" if result.name != result.source_name else ""
    out.out.print(f"installed {result.name}{renamed}: {human_bytes(result.size, decimal=True)}, {result.blobs} "
                  f"blobs verified, {result.uploaded} sent", markup=False, highlight=False)

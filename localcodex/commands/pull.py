"""`localcodex pull MODEL`: download a model through Ollama, after checking it fits on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.core.pull import PullResult
    from localcodex.render.output import Output

# Seconds of silence tolerated on the stream: verifying a large blob sends nothing for a while.
PULL_TIMEOUT = 900.0
PULL_TOTAL = 6 * 3600.0  # the whole pull; a stopped pull resumes where it was


def register(app: typer.Typer) -> None:
    app.command("pull")(pull_command)


def pull_command(
    model: Annotated[str, typer.Argument(help="Model to pull, e.g. qwen3.5:27b or hf.co/user/repo:Q4_K_M.")],
    force: Annotated[bool, typer.Option("--force", help="Pull again even if the model is installed.")] = False,
    host: options.Host = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Total seconds the pull may take before it stops (exit 10; a later pull resumes).")
    ] = PULL_TOTAL,
    json_: options.Json = False,
) -> None:
    """Pull a model into Ollama with progress per layer; refuses before downloading when the disk is too small."""
    from localcodex.render.output import run_command

    def body(out):
        from localcodex.adapters.ollama import OllamaServer
        from localcodex.core.pull import pull
        from localcodex.render.progress import pull_display

        if timeout <= 0:
            from localcodex.errors import UsageError

            raise UsageError(f"--timeout {timeout:g} must be more than 0 seconds", "e.g. --timeout 3600")
        server = OllamaServer(host, timeout=min(PULL_TIMEOUT, timeout))
        with pull_display(out) as on_progress, server.deadline(timeout, f"pulling {model}"):
            return pull(server, model, force=force, on_progress=on_progress)

    run_command("pull", json_, body, render)


def render(out: Output, result: PullResult) -> None:
    from localcodex.render.output import human_bytes
    from localcodex.render.progress import human_duration

    for note in result.notes:
        out.note(f"[dim]note:[/dim] {note}" if result.action == "pulled" else note)
    if result.action == "already_installed":
        return
    fetched = result.downloaded_bytes
    reused = sum(1 for layer in result.layers if layer.reused)
    rate = f", {human_bytes(fetched / result.seconds, decimal=True)}/s" if fetched and result.seconds > 0 else ""
    line = (
        f"pulled {result.model}: {human_bytes(result.size, decimal=True)} on disk, "
        f"{human_bytes(fetched, decimal=True)} downloaded in {human_duration(result.seconds)}{rate}"
    )
    if reused:
        line += f"; {reused} of {len(result.layers)} layers were already on disk"
    out.out.print(line, highlight=False, markup=False)

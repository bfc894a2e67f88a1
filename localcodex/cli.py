"""The command line: a thin typer app. Each command lives in `localcodex/commands/<name>.py` and registers
itself through `register(app)`; this file only assembles them and owns the process entry point.

Start-up time matters (`--help` must feel instant): command modules import only typer and the option types
at module level; everything heavy is imported inside the command that needs it.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from localcodex import __version__

# One entry per command module, in the order `--help` lists them: setup, then its steps in pipeline order.
COMMAND_MODULES = (
    "setup",
    "detect",
    "recommend",
    "plan",
    "pull",
    "models",
    "check",
    "configure",
    "provider",
    "bench",
    "receipts",
    "doctor",
    "trial",
    "paths",
)

app = typer.Typer(
    name="localcodex",
    help="Set up Ollama as a local backend for the OpenAI Codex CLI: detect, recommend, pull, check, "
    "configure, bench. Start with `localcodex setup`.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"localcodex {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (also: LOCALCODEX_DEBUG=1).")] = False,
) -> None:
    """Set up Ollama as a local backend for the OpenAI Codex CLI."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"localcodex.commands.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. `--debug` is accepted anywhere on the command line."""
    import json

    from localcodex.errors import ExitCode
    from localcodex.render import output

    args = list(sys.argv[1:] if argv is None else argv)
    cut = args.index("--") if "--" in args else len(args)
    if "--debug" in args[:cut]:
        output.DEBUG = True
        args = [a for i, a in enumerate(args) if not (a == "--debug" and i < cut)]
    try:
        app(args=args, prog_name="localcodex", standalone_mode=False)
    except Exception as exc:  # typer vendors click in newer releases: match its exceptions by name
        kinds = {cls.__name__ for cls in type(exc).__mro__}
        if "Exit" in kinds:
            raise SystemExit(getattr(exc, "exit_code", 0)) from None
        if "Abort" in kinds:
            sys.stderr.write("\naborted\n")
            raise SystemExit(int(ExitCode.INTERRUPTED)) from None
        if "ClickException" not in kinds:
            raise
        if "--json" in args[:cut]:
            command = next((a for a in args if not a.startswith("-")), "")
            item = output.ErrorItem("usage", exc.format_message(), "see `localcodex --help`")
            sys.stdout.write(json.dumps(output.envelope(command, "error", None, [item], []), indent=2) + "\n")
        else:
            exc.show()
        raise SystemExit(int(ExitCode.USAGE)) from None

if __name__ == "__main__":
    main()

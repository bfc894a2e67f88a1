"""The command line: a thin typer app. Each command lives in `localcodex/commands/<name>.py` and registers
itself through `register(app)`; this file only assembles them and owns the process entry point.

Start-up time matters (`--help` must feel instant): command modules import only typer and the option types
at module level; everything heavy is imported inside the command that needs it.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

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
    "eval",
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


class _Plain:
    """Coerces a text option or an on/off flag the way typer would, without pydantic.

    typer 0.2x validates every parameter it cannot skip through a pydantic TypeAdapter built on first use;
    importing pydantic for that costs ~60 ms, more than the whole of `localcodex detect`. A `str` option needs no
    validation (click hands the argument over as text), nor does a flag (click hands over True, False or None).
    Parameters of any other type keep typer's own coercion; on a typer without that machinery nothing changes.
    """

    def coerce(self, value: object, param: object = None, ctx: object = None) -> object:
        return value


def _lighten(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    kind = getattr(descriptor, "annotation", None)
    single = getattr(param, "nargs", 1) == 1 and not getattr(param, "multiple", False)
    plain = kind is str or (kind is bool and getattr(param, "is_flag", False))
    if plain and single and hasattr(param, "_runtime_param"):
        param._runtime_param = _Plain()  # typer's lazily built coercion, set before its first use


def _light_options(command: Any) -> None:
    """Give every text option and flag of `command` (its help option and subcommands included) `_Plain`."""
    for param in getattr(command, "params", ()):
        _lighten(param)
    original = getattr(command, "get_help_option", None)
    if original is not None:

        def get_help_option(ctx: Any, _original: Any = original) -> Any:
            option = _original(ctx)
            _lighten(option)
            return option

        command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        _light_options(sub)


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
        root_command = typer.main.get_command(app)
        _light_options(root_command)
        root_command.main(args=args, prog_name="localcodex", standalone_mode=False)
    except Exception as error:  # typer vendors click in newer releases: match its exceptions by name
        exc: Any = error
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

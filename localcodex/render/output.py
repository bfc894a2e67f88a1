"""The one renderer: rich for people, a versioned JSON envelope for `--json`, and the single place where
errors become a printed line and an exit code.

Contract of `--json` (stable; bump ENVELOPE_VERSION on an incompatible change): stdout carries exactly one
JSON object and nothing else:

    {"localcodex": "<version>", "envelope": 1, "command": "detect", "status": "ok" | "error",
     "data": {...} | null, "errors": [{"code", "message", "hint"}], "warnings": ["..."]}

Progress, warnings and errors for people go to stderr; data goes to stdout. Colour follows rich's rules
(NO_COLOR, FORCE_COLOR, TERM=dumb, not a terminal).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from localcodex import __version__
from localcodex.domain.envelope import ErrorItem, to_jsonable
from localcodex.domain.units import format_bytes
from localcodex.errors import ExitCode, LocalcodexError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

ENVELOPE_VERSION = 1
T = TypeVar("T")

# Set by cli.main() from `--debug` anywhere on the command line (or LOCALCODEX_DEBUG=1).
DEBUG = False


def debug_enabled() -> bool:
    return DEBUG or os.environ.get("LOCALCODEX_DEBUG", "") not in ("", "0")


@dataclass(frozen=True)
class Outcome:
    """How a finished command ended: its exit code and the errors to list in the envelope."""

    exit_code: ExitCode = ExitCode.OK
    errors: tuple[ErrorItem, ...] = ()


PIPE_WIDTH = 1000  # piped output has no screen to fit: tables take the width they need, nothing is cut


def pipe_console() -> Console:
    """A stdout console for a pipe or a file: no line is cut with "…" or wrapped to a screen width (a model
    name or a path stays whole, for grep and copy), and no line ends in the spaces a table pads cells with."""
    import io

    from rich.console import Console

    class PipeConsole(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:
            buffer = io.StringIO()
            inner = Console(file=buffer, width=PIPE_WIDTH, highlight=False, no_color=self.no_color,
                            color_system=None, force_terminal=False, soft_wrap=False)
            inner.print(*objects, **kwargs)
            text = "\n".join(line.rstrip() for line in buffer.getvalue().split("\n"))
            self.file.write(text)
            self.file.flush()

    return PipeConsole(highlight=False, width=PIPE_WIDTH)


@dataclass
class Output:
    """What a command may use to talk to the user. Core code never receives one."""

    command: str
    json: bool = False
    debug: bool = False
    warnings: list[str] = field(default_factory=list)
    _out: Console | None = None
    _err: Console | None = None

    @property
    def out(self) -> Console:
        """stdout console (data). Must not be used in JSON mode."""
        if self._out is None:
            from rich.console import Console

            self._out = Console(highlight=False)
            if not self._out.is_terminal:
                self._out = pipe_console()
        return self._out

    @property
    def err(self) -> Console:
        """stderr console (progress, warnings, errors)."""
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False)
        return self._err

    @property
    def interactive(self) -> bool:
        """True when a person can answer a question and watch a live progress bar."""
        return not self.json and sys.stdin.isatty() and self.err.is_terminal

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if not self.json:
            self.err.print(f"[yellow]warning:[/yellow] {_escape(message)}", soft_wrap=True)

    def note(self, message: str) -> None:
        """A progress or status line for people (stderr); silent in JSON mode."""
        if not self.json:
            self.err.print(message, soft_wrap=True)

    def event(self, kind: str, **fields: Any) -> None:
        """A machine-readable progress event: one JSON line on stderr in JSON mode."""
        if self.json:
            sys.stderr.write(json.dumps({"event": kind, **to_jsonable(fields)}) + "\n")
            sys.stderr.flush()

    def confirm(self, question: str, *, default: bool = False, assume_yes: bool = False) -> bool:
        if assume_yes:
            return True
        if not self.interactive:
            raise UsageError(
                f"{question.rstrip('?')}: needs an answer, and there is no terminal to ask on",
                "pass --yes to answer yes to every question",
            )
        from rich.prompt import Confirm

        return Confirm.ask(question, default=default, console=self.err)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def envelope(
    command: str, status: str, data: Any, errors: Iterable[ErrorItem], warnings: Iterable[str]
) -> dict[str, Any]:
    return {
        "localcodex": __version__,
        "envelope": ENVELOPE_VERSION,
        "command": command,
        "status": status,
        "data": to_jsonable(data),
        "errors": [to_jsonable(e) for e in errors],
        "warnings": list(warnings),
    }


def _emit_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def print_error(out: Output, err: LocalcodexError) -> None:
    # soft_wrap: the terminal wraps a long line; rich must not cut it into several (scripts grep one line)
    out.err.print(f"[bold red]error:[/bold red] {_escape(err.message)}", soft_wrap=True)
    if err.hint:
        out.err.print(f"  [dim]fix:[/dim] {_escape(err.hint)}", soft_wrap=True)


def fail(out: Output, err: LocalcodexError) -> NoReturn:
    """Report a LocalcodexError the one way, then exit with its code."""
    if out.json:
        item = ErrorItem(err.code, err.message, err.hint)
        _emit_json(envelope(out.command, "error", err.data, [item], out.warnings))
    else:
        print_error(out, err)
    raise SystemExit(int(err.exit_code))


def run_command(
    command: str,
    json_mode: bool,
    body: Callable[[Output], T],
    render: Callable[[Output, T], None] | None = None,
    judge: Callable[[T], Outcome] | None = None,
) -> NoReturn:
    """Run one command's body, render its result, map errors to exit codes. Never returns.

    `body` calls one core function and returns its typed result; `render` shows it to people;
    `judge` (optional) turns a result into an exit code and envelope errors (e.g. `check` with failures).
    """
    out = Output(command=command, json=json_mode, debug=debug_enabled())
    try:
        result = body(out)
    except LocalcodexError as err:
        if out.debug:
            traceback.print_exc()
        fail(out, err)
    except KeyboardInterrupt:
        fail(out, LocalcodexError("interrupted", code="interrupted", exit_code=ExitCode.INTERRUPTED))
    except Exception as exc:  # the one place an unexpected error is turned into a line
        if out.debug:
            traceback.print_exc()
        fail(
            out,
            LocalcodexError(
                f"internal error: {type(exc).__name__}: {exc}",
                "run again with --debug for the traceback, and report it",
                code="internal",
            ),
        )
    outcome = judge(result) if judge else Outcome()
    if out.json:
        status = "ok" if outcome.exit_code == ExitCode.OK else "error"
        _emit_json(envelope(command, status, result, outcome.errors, out.warnings))
    elif render is not None:
        render(out, result)
    raise SystemExit(int(outcome.exit_code))


def human_bytes(n: float | None, *, decimal: bool = False) -> str:
    """Bytes for people: domain.units.format_bytes, the one byte formatter.

    >>> human_bytes(17 * 1024**3), human_bytes(17_000_000_000, decimal=True), human_bytes(None), human_bytes(512)
    ('17.0 GiB', '17.0 GB', 'unknown', '512 B')
    """
    return format_bytes(n, decimal=decimal)

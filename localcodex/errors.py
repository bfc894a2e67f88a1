"""The one user-facing error type, and the exit codes (documented in README "Exit codes").

Core code raises a `LocalcodexError` (or a subclass) with a one-line message and a hint saying how to fix it;
`localcodex.render.output.run_command` catches it in one place, prints one line (or the JSON envelope) and exits with
its code. Tracebacks are shown only with `--debug` (or LOCALCODEX_DEBUG=1).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # unexpected error, or a step that failed without a more specific code
    USAGE = 2  # bad option, argument or input value
    OLLAMA_UNAVAILABLE = 3  # Ollama not installed, not running, or not reachable at the host tried
    NOT_FOUND = 4  # a model, file, profile or backup that does not exist
    CONFIG = 5  # a config file cannot be read or written safely (malformed TOML, reserved id, read-only)
    CHECK_FAILED = 6  # `check`/`doctor`/`trial` ran and found failures
    NO_FIT = 7  # not enough memory or disk for what was asked
    SERVER_ERROR = 8  # the server answered with an error (HTTP 5xx, error line mid-stream, bad answer)
    CODEX_MISSING = 9  # the Codex CLI is not installed or too old
    TIMEOUT = 10  # a step ran past its time limit
    OFFLINE = 11  # the model registry cannot be reached (air-gapped or no network)
    INTERRUPTED = 130  # Ctrl-C


class LocalcodexError(Exception):
    """An error a user can act on: a message, a hint, a stable code string and an exit code."""

    exit_code: ExitCode = ExitCode.FAILURE
    code: str = "error"

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        code: str | None = None,
        exit_code: ExitCode | None = None,
        data: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code
        if exit_code is not None:
            self.exit_code = exit_code
        self.data = data  # partial result to put in the JSON envelope, if any

    def __str__(self) -> str:
        return self.message


class UsageError(LocalcodexError):
    exit_code = ExitCode.USAGE
    code = "usage"


class OllamaUnavailable(LocalcodexError):
    exit_code = ExitCode.OLLAMA_UNAVAILABLE
    code = "ollama_unavailable"


class NotFound(LocalcodexError):
    exit_code = ExitCode.NOT_FOUND
    code = "not_found"


class ConfigError(LocalcodexError):
    exit_code = ExitCode.CONFIG
    code = "config"


class CheckFailed(LocalcodexError):
    exit_code = ExitCode.CHECK_FAILED
    code = "check_failed"


class NoFit(LocalcodexError):
    exit_code = ExitCode.NO_FIT
    code = "no_fit"


class ServerError(LocalcodexError):
    exit_code = ExitCode.SERVER_ERROR
    code = "server_error"


class CodexMissing(LocalcodexError):
    exit_code = ExitCode.CODEX_MISSING
    code = "codex_missing"


class StepTimeout(LocalcodexError):
    exit_code = ExitCode.TIMEOUT
    code = "timeout"


class Offline(LocalcodexError):
    exit_code = ExitCode.OFFLINE
    code = "offline"

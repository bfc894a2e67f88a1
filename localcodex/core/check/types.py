"""check's types: the request, the report, each probe's result and the verdict a probe returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


DEFAULT_MIN_CONTEXT = 16384
DEFAULT_TIMEOUT = 60.0  # seconds per generation probe (a slow local model, a cold load)
DEFAULT_CONNECT_TIMEOUT = 5.0


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Probe:
    """One probe's result. `detail` says what was seen; `fix` (on warn/fail) says what to do."""

    name: str
    title: str
    status: Status
    duration_s: float
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeStarted:
    """Progress: a probe is about to run (the finished `Probe` follows)."""

    name: str
    title: str


@dataclass(frozen=True)
class CheckRequest:
    """What to check. `model=None` means: the model of the `local_ollama` Codex profile, if there is one.

    `base_url` (any OpenAI-compatible server, exactly as it would go into Codex's `base_url`) wins over `host`
    (an Ollama server as OLLAMA_HOST takes it); with neither, OLLAMA_HOST or 127.0.0.1:11434 is used. The
    environment (OLLAMA_HOST, CODEX_HOME, the `env_key` variable) is the invocation's, from `Live`.
    """

    model: str | None = None
    host: str | None = None
    base_url: str | None = None
    env_key: str | None = None
    min_context: int = DEFAULT_MIN_CONTEXT
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    headers: Mapping[str, str] = field(default_factory=dict)
    only: frozenset[str] | None = None  # run just these probes (doctor: the quick ones); the rest are `skip`


@dataclass(frozen=True)
class CheckReport:
    model: str
    base_url: str  # the base URL checked, as given
    suggested_base_url: str | None  # the exact base_url to give Codex (None when no working one was found)
    server: str  # "ollama", "openai-compatible" or "unknown"
    server_version: str | None
    context_length: int | None  # the effective context seen (/api/ps, num_ctx, or the truncation test)
    min_context: int
    env_key: str | None
    ok: bool  # nothing failed (warnings allowed)
    counts: dict[str, int]
    duration_s: float
    probes: tuple[Probe, ...]
    pace: dict[str, Any] | None = None  # the timed request that scaled the generation probes' limits

    def probe(self, name: str) -> Probe:
        return next(p for p in self.probes if p.name == name)

    @property
    def timed_out(self) -> tuple[Probe, ...]:
        """The probes that failed because they hit their time limit (`data.time_limit_s`)."""
        return tuple(p for p in self.failed if p.data.get("error") == "timeout")

    @property
    def failed(self) -> tuple[Probe, ...]:
        return tuple(p for p in self.probes if p.status is Status.FAIL)


# -- verdicts ---------------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    status: Status
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def passed(detail: str, **data: Any) -> Verdict:
    return Verdict(Status.PASS, detail, None, data)


def warned(detail: str, fix: str | None = None, **data: Any) -> Verdict:
    return Verdict(Status.WARN, detail, fix, data)


def failed(detail: str, fix: str | None = None, **data: Any) -> Verdict:
    return Verdict(Status.FAIL, detail, fix, data)


def skipped(detail: str, **data: Any) -> Verdict:
    return Verdict(Status.SKIP, detail, None, data)

"""What one `check` run knows as it goes (`ProbeRun`), the probes' names, order and dependencies, and the time
limits every request of a probe is held to."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from localcodex.core.check.types import CheckRequest, Probe
from localcodex.errors import LocalcodexError, StepTimeout

if TYPE_CHECKING:
    from localcodex.adapters.ollama import OllamaServer
    from localcodex.adapters.openai_compat import OpenAICompatClient, Reply, Timeouts
    from localcodex.core.check.pace import Pace
    from localcodex.core.ports import Live

QUICK_DEADLINE = 15.0  # seconds for a non-generating request (list, show, version)
OLLAMA_PORT = 11434
RESPONSES_SINCE = (0, 13, 3)  # Ollama added /v1/responses in v0.13.3
CODEX_OSS_MINIMUM = (0, 13, 4)  # `codex --oss` refuses older servers
PROFILE = "local_ollama"

PROBES: tuple[tuple[str, str], ...] = (
    ("reachable", "Reachable"),
    ("url", "Right URL"),
    ("server", "Server and version"),
    ("model", "Model present"),
    ("responses", "Responses API"),
    ("tools", "Tool call round trip"),
    ("context", "Context"),
    ("chat", "Chat completions"),
    ("auth", "Auth and headers"),
)
TITLES = dict(PROBES)
# A probe runs only when the probes it needs neither failed nor were blocked themselves.
NEEDS: dict[str, tuple[str, ...]] = {
    "reachable": (),
    "url": ("reachable",),
    "server": ("url",),
    "model": ("url",),
    "responses": ("server", "model"),
    "tools": ("responses",),
    "context": ("model",),
    "chat": ("model",),
    "auth": ("reachable",),  # an unset env_key fails it before anything else runs
}


class ProbeDeadline(StepTimeout):
    """A probe used up its time limit between two requests."""


# -- the run ----------------------------------------------------------------------------------------------------


@dataclass
class ProbeRun:
    """What one check learns as it goes; each probe reads what earlier ones found."""

    req: CheckRequest
    live: Live
    model: str
    base: str  # as given
    client: OpenAICompatClient | None = None
    key_error: LocalcodexError | None = None
    first_reply: Reply | None = None
    suggested: str | None = None
    ollama: OllamaServer | None = None
    version: str | None = None
    server_kind: str = "unknown"
    served: list[str] = field(default_factory=list)
    context_length: int | None = None
    auth_rejections: list[str] = field(default_factory=list)
    host_refusals: list[str] = field(default_factory=list)  # Ollama's Host check: 403, empty body
    deadline: float = 0.0
    limit: float = 0.0  # the running probe's time limit: --timeout, scaled by the server's pace
    pace: Pace | None = None
    paced: bool = False  # the timed request was made (pace may still be None: it failed)
    blocked: dict[str, str] = field(default_factory=dict)
    results: dict[str, Probe] = field(default_factory=dict)

    # time limits ------------------------------------------------------------------------------------------

    def quick_for(self, total: float) -> Timeouts:
        from localcodex.adapters.openai_compat import Timeouts

        return Timeouts(connect=min(self.req.connect_timeout, total), read=total, total=total)

    def quick(self) -> Timeouts:
        """Timeouts for a request that generates nothing (list, show, version): at most QUICK_DEADLINE, and
        never past the running probe's own limit."""
        from localcodex.adapters.openai_compat import Timeouts

        c = self.req.connect_timeout
        total = min(self.req.timeout, QUICK_DEADLINE)
        if self.deadline:
            total = min(total, self.left())
        return Timeouts(connect=min(c, total), read=total, total=total)

    def left(self) -> float:
        """Seconds left of the running probe's limit; ProbeDeadline when it is used up."""
        left = self.deadline - time.perf_counter()
        if left <= 0.05:
            raise ProbeDeadline(
                f"the probe used up its {self.limit:.3g} s time limit before its next request",
                "the server answers too slowly or not at all: check it, or raise --timeout",
            )
        return left

    def budget(self) -> Timeouts:
        """Timeouts for the next request of a generation probe: whatever is left of the probe's limit."""
        from localcodex.adapters.openai_compat import Timeouts

        left = self.left()
        return Timeouts(connect=min(self.req.connect_timeout, left), read=left, total=left, limit=self.limit)

    @property
    def is_ollama(self) -> bool:
        return self.server_kind == "ollama"

    def note_rejection(self, exc: BaseException) -> None:
        from localcodex.adapters.openai_compat import host_check_refusal

        status = getattr(exc, "status", None)
        reply = getattr(exc, "reply", None)
        if status == 403 and reply is not None and host_check_refusal(status, reply.text):
            self.host_refusals.append(str(exc))
        elif status in (401, 403):
            self.auth_rejections.append(str(exc))


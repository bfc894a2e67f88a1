"""What the core steps need from the outside world, as an interface: `localcodex.wiring.Live` is the real one,
tests pass fakes. Steps never build an adapter from a host string or read the environment themselves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from localcodex.adapters.ollama import OllamaServer
from localcodex.adapters.setup_state import SetupState
from localcodex.domain.machine import Machine
from localcodex.invocation import Invocation
from localcodex.paths import OllamaHost

if TYPE_CHECKING:  # ports is imported by core/bench/run itself
    from localcodex.adapters.http_errors import Timeouts
    from localcodex.adapters.openai_compat import OpenAICompatClient
    from localcodex.adapters.receipts import ReceiptStore
    from localcodex.core.bench.run import BenchRequest
    from localcodex.core.bench.targets import Endpoint


class Live(Protocol):
    @property
    def inv(self) -> Invocation: ...

    def host(self, given: str | None) -> OllamaHost: ...

    def ollama(self, *, timeout: float = 30.0) -> OllamaServer: ...

    def ollama_at(self, host: OllamaHost, *, timeout: float = 30.0) -> OllamaServer: ...

    def openai_client(self, base_url: str, *, env_key: str | None = None, headers: Mapping[str, str] | None = None,
                      timeouts: Timeouts | None = None) -> OpenAICompatClient: ...

    def receipts(self) -> ReceiptStore: ...

    def setup_state(self) -> SetupState: ...

    def bench_endpoint(self, request: BenchRequest) -> Endpoint: ...

    def ram_bandwidth(self, machine: Machine) -> float | None: ...

    def measured_speeds(self, machine: Machine) -> Callable[[str], float | None] | None: ...

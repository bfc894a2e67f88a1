"""Wiring: the one place that builds the live adapters from an invocation and hands them to the core steps.

Core steps take adapter objects (an Ollama server, a receipts store, the RAM bandwidth probe) through the
`localcodex.core.ports.Live` interface, so tests pass fakes or the emulator without patching anything; commands
build a `Live(invocation)` here. Nothing in this module decides policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from localcodex.adapters.ollama import OllamaServer
from localcodex.adapters.setup_state import SetupState
from localcodex.core.bench.run import BenchRequest
from localcodex.core.bench.targets import Endpoint, OllamaEndpoint, OpenAIEndpoint
from localcodex.domain.fingerprint import fingerprint
from localcodex.domain.machine import Machine
from localcodex.domain.urls import locality
from localcodex.errors import LocalcodexError
from localcodex.invocation import Invocation
from localcodex.paths import OllamaHost, ollama_host

if TYPE_CHECKING:  # sqlite3 comes with the receipts store: imported only by the commands that use receipts
    from localcodex.adapters.http_errors import Timeouts
    from localcodex.adapters.openai_compat import OpenAICompatClient
    from localcodex.adapters.receipts import ReceiptStore


@dataclass(frozen=True)
class Live:
    """The real adapters of one invocation (implements `localcodex.core.ports.Live`)."""

    inv: Invocation

    def host(self, given: str | None) -> OllamaHost:
        """A host a request names (a provider template's `host`, say), read as OLLAMA_HOST would be, with this
        invocation's environment; None: the invocation's own server."""
        return ollama_host(given, self.inv.env) if given else self.inv.host

    def ollama(self, *, timeout: float = 30.0) -> OllamaServer:
        """The Ollama server of this invocation."""
        return OllamaServer(self.inv.host, timeout=timeout)

    def ollama_at(self, host: OllamaHost, *, timeout: float = 30.0) -> OllamaServer:
        """An Ollama server elsewhere than the invocation's (one a Codex profile names, for example)."""
        return OllamaServer(host, timeout=timeout)

    def openai_client(self, base_url: str, *, env_key: str | None = None, headers: Mapping[str, str] | None = None,
                      timeouts: Timeouts | None = None) -> OpenAICompatClient:
        """A client for an OpenAI-compatible `/v1` server (the key read from `env_key` in this environment),
        sending `headers` with every request; `timeouts` are its default limits (each call may pass others)."""
        from localcodex.adapters.openai_compat import OpenAICompatClient

        return OpenAICompatClient(base_url, api_key_env=env_key, env=self.inv.env, headers=headers, timeouts=timeouts)

    def receipts(self) -> ReceiptStore:
        from localcodex.adapters.receipts import ReceiptStore

        return ReceiptStore(self.inv.receipts_db)

    def bench_endpoint(self, request: BenchRequest) -> Endpoint:
        """What `bench` measures: Ollama's native API (`request.host`, else the invocation's server), or any
        OpenAI-compatible `/v1` endpoint (`request.base_url`, its key read from the invocation's environment)."""
        if request.base_url:
            from localcodex.adapters.openai_compat import OpenAICompatClient  # httpx: only for this endpoint

            url, key, env = request.base_url.rstrip("/"), request.env_key, self.inv.env
            # Measured on this machine (loopback) or not: a LAN server's speed says nothing about this machine.
            local = locality(url).on_this_machine
            return OpenAIEndpoint(url, lambda: OpenAICompatClient(url, api_key_env=key, env=env), is_local=local)
        host = ollama_host(request.host, self.inv.env) if request.host else self.inv.host
        return OllamaEndpoint(OllamaServer(host), request.keep_alive)

    def setup_state(self) -> SetupState:
        return SetupState(self.inv.data_dir)

    def ram_bandwidth(self, machine: Machine) -> float | None:
        """This machine's RAM copy bandwidth in bytes/s (probed once, cached in the data folder); None for a remote
        Ollama host, whose RAM this machine cannot measure."""
        if machine.remote:
            return None
        from localcodex.adapters.membw import cached_ram_bandwidth

        return cached_ram_bandwidth(self.inv.data_dir).bytes_per_s

    def measured_speeds(self, machine: Machine) -> Callable[[str], float | None] | None:
        """Measured decode tok/s of a model on this machine, from the benchmark receipts (None: no receipts)."""
        if not self.inv.receipts_db.exists():
            return None
        store, print_ = self.receipts(), fingerprint(machine)

        def lookup(name: str) -> float | None:
            try:
                return store.measured_decode_tps(print_, name)
            except LocalcodexError:
                return None  # an unreadable receipts file only costs the measured figures

        return lookup


def live(host: str | None = None, *, json: bool = False) -> Live:
    """The live adapters of this process: its environment, with `--host` applied."""
    return Live(Invocation.build(host, json=json))

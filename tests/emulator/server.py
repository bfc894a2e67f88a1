"""The emulator: a real HTTP server on 127.0.0.1 speaking Ollama's API."""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import generation, native, openai_layer, registry, responses, transfer
from .faults import Fault, FaultBook
from .httpbase import Aborted, RecordedRequest, RequestHandler, Router
from .models import FakeModel, catalog_models, preset_models
from .names import parse_name
from .responder import Reply, ResponderRequest
from .runtime import Runtime
from .store import Store
from .versions import Features

Responder = Callable[[ResponderRequest], "Reply | str"]


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], emulator: Emulator):
        self.emulator = emulator
        super().__init__(address, RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        def serve() -> None:
            try:
                self.process_request_thread(request, client_address)
            finally:
                self.emulator._threads.discard(thread)

        thread = threading.Thread(target=serve, name="ollama-emulator-conn", daemon=True)
        self.emulator._threads.add(thread)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Dropped connections are expected; anything else is an emulator bug: show it."""
        error = sys.exc_info()[1]
        if not isinstance(error, (OSError, Aborted, ValueError)):
            traceback.print_exc()


def build_router(emu: Emulator) -> Router:
    router = Router()
    router.add("GET HEAD", "/", native.root)
    router.add("GET HEAD", "/api/version", native.version)
    router.add("GET HEAD", "/api/tags", native.tags)
    router.add("GET", "/api/ps", native.ps)
    router.add("POST", "/api/show", native.show)
    router.add("POST", "/api/pull", transfer.pull)
    router.add("POST", "/api/push", transfer.push)
    router.add("DELETE", "/api/delete", transfer.delete)
    router.add("POST", "/api/copy", transfer.copy)
    router.add("POST", "/api/create", transfer.create)
    router.add("HEAD", "/api/blobs/:digest", transfer.head_blob)
    router.add("POST", "/api/blobs/:digest", transfer.post_blob, raw_body=True)
    router.add("POST", "/api/generate", generation.generate)
    router.add("POST", "/api/chat", generation.chat)
    router.add("GET", "/v1/models", openai_layer.list_models)
    router.add("GET", "/v1/models/:model", openai_layer.retrieve_model)
    router.add("GET", "/v2/:namespace/:model/manifests/:tag", registry.manifest)
    router.add("GET HEAD", "/v2/:namespace/:model/blobs/:digest", registry.blob)
    router.add("POST", "/v1/chat/completions", openai_layer.chat_completions)
    router.add("POST", "/v1/completions", openai_layer.completions)
    router.add("POST", "/v1/responses", responses.handle,
               available=lambda: emu.features.responses_api)
    return router


class Emulator:
    """An Ollama server stand-in. See the package docstring for the whole contract."""

    def __init__(self, models_dir: str | Path | None = None, version: str = "0.32.15",
                 vram_bytes: int = 0, registry: Iterable[FakeModel] | None = None,
                 installed: Iterable[FakeModel] = (), decode_rate: float = 40.0,
                 prompt_rate: float = 2000.0, load_time: float = 0.2, pull_rate: float = 5e9,
                 host: str = "127.0.0.1", port: int = 0, context_length_env: int | None = None,
                 keep_alive: float = 300.0):
        if min(decode_rate, prompt_rate, pull_rate) <= 0 or load_time < 0:
            raise ValueError("rates must be positive and load_time not negative")
        self._own_dir = models_dir is None
        self.models_dir = Path(models_dir) if models_dir is not None else Path(tempfile.mkdtemp())
        self.store = Store(self.models_dir)
        self.features = Features(version)
        self.vram_bytes = int(vram_bytes)
        self.decode_rate = float(decode_rate)
        self.prompt_rate = float(prompt_rate)
        self.load_time = float(load_time)
        self.pull_rate = float(pull_rate)
        self.context_length_env = context_length_env
        self.keep_alive_default = float(keep_alive)
        self.host = host
        self.port = int(port)
        self.responder: Responder | None = None
        self.requests: list[RecordedRequest] = []
        self.registry_bytes = 0  # body bytes the registry routes (/v2/...) sent
        self.faults = FaultBook()
        self.runtime = Runtime(self)
        self.router = build_router(self)
        self.registry: dict[tuple[str, str, str, str], FakeModel] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._listener: _Listener | None = None
        self._serve_thread: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._connections: set[RequestHandler] = set()
        # the default registry: every tool-capable catalog model, then the presets (which win on a clash)
        for model in [*catalog_models(), *preset_models()] if registry is None else registry:
            self.add_to_registry(model)
        for model in installed:
            self.add_to_registry(model)
            self.store.install(model)

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        self._stopping.clear()
        if self._listener is None:
            self.store.prune_stale()
            self._open_listener()
        return self

    def stop(self) -> None:
        """Stop serving; ends streams and stalls, joins every thread (well under 1 s)."""
        self._stopping.set()
        self._close_listener()
        self._drop_connections()
        deadline = time.monotonic() + 1.0
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._own_dir:
            shutil.rmtree(self.models_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open_listener(self) -> None:
        listener = _Listener((self.host, self.port), self)
        self.port = listener.server_address[1]
        thread = threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="ollama-emulator", daemon=True)
        self._listener, self._serve_thread = listener, thread
        thread.start()

    def _close_listener(self) -> None:
        listener, thread = self._listener, self._serve_thread
        self._listener = self._serve_thread = None
        if listener is not None:
            listener.shutdown()
            listener.server_close()
        if thread is not None:
            thread.join(1.0)

    def _drop_connections(self) -> None:
        for handler in list(self._connections):
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------ test controls

    def inject(self, fault: Fault) -> None:
        self.faults.add(fault)
        if fault.kind == "refuse" and self._listener is not None:
            self._close_listener()
            self._drop_connections()

    def clear_faults(self) -> None:
        self.faults.clear()
        if self._listener is None and not self._stopping.is_set() and self._serve_thread is None \
                and self.port:
            self._open_listener()

    def set_version(self, version: str) -> None:
        self.features = Features(version)

    @property
    def version(self) -> str:
        return self.features.version

    @property
    def loaded(self) -> list[dict[str, Any]]:
        """What ``/api/ps`` would show."""
        return self.runtime.ps()

    def add_to_registry(self, model: FakeModel) -> None:
        name = parse_name(model.name)
        if name is None:
            raise ValueError(f"invalid model name {model.name!r}")
        self.registry[name.key] = model

    def install(self, model: FakeModel) -> None:
        """Install ``model`` at once (and offer it for pulls)."""
        self.add_to_registry(model)
        self.store.install(model)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # ------------------------------------------------------------ waiting

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def sleep_until(self, deadline: float) -> None:
        """Sleep until a ``time.monotonic()`` deadline; raise :class:`Aborted` on stop."""
        remaining = deadline - time.monotonic()
        if remaining > 0 and self._stopping.wait(remaining):
            raise Aborted("server stopping")
        if self._stopping.is_set():
            raise Aborted("server stopping")

    def sleep(self, seconds: float) -> None:
        self.sleep_until(time.monotonic() + seconds)

    def stall(self, seconds: float) -> None:
        """Wait ``seconds``, or until faults are cleared or the server stops."""
        released = self.faults.released
        end = time.monotonic() + seconds
        while not released.is_set():
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            if self._stopping.wait(min(remaining, 0.05)):
                raise Aborted("server stopping")

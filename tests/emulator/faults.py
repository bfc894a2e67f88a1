"""Injected faults.

===============  ==========================================================================
kind             effect on a matching request (``after`` default in brackets)
===============  ==========================================================================
http_500         answer ``status`` (500) with an Ollama JSON error body (OpenAI-shaped under
                 ``/v1``) before anything else; with ``after`` > 0 on a stream, send ``after``
                 chunks, then an error line (NDJSON ``{"error": …}``, SSE ``data: {"error": …}``
                 or a ``response.failed`` event) and end the stream normally
reset            close the socket abruptly (TCP RST) after ``after`` chunks of a stream or
                 ``after`` bytes of a plain body [1 chunk / 0 bytes]
malformed_json   after ``after`` chunks send one broken JSON line/event and end the stream; a
                 plain JSON body is cut in half [0]
stall            stop sending for ``seconds`` (default 3600) after ``after`` chunks, then go on;
                 ``clear_faults()`` and ``stop()`` end a stall at once [0]
pull_fail        ``/api/pull`` fails with ``message`` (default a registry read error) once
                 ``after`` bytes were downloaded [half the bytes to download]; the partial
                 download is kept, so the next pull resumes
disk_full        the same, with Ollama's ``write …/blobs/sha256-…-partial: no space left on
                 device``
refuse           the listener closes at once (and open connections are dropped), so new
                 connections are refused until ``clear_faults()``
===============  ==========================================================================

``path`` is a prefix of the request path (``None`` = any path; ``pull_fail`` and
``disk_full`` only ever affect pulls). ``times`` is how many requests a fault affects
(``None`` = forever).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

KINDS = ("http_500", "reset", "malformed_json", "stall", "pull_fail", "disk_full", "refuse")
STREAM_KINDS = ("http_500", "reset", "malformed_json", "stall")
PULL_KINDS = ("pull_fail", "disk_full")
PULL_FAIL_MESSAGE = "max retries exceeded: unexpected EOF"
_DEFAULT_AFTER = {"reset": 1, "malformed_json": 0, "stall": 0, "http_500": 0}


@dataclass
class Fault:
    kind: str
    path: str | None = None
    after: int | None = None
    times: int | None = 1
    status: int = 500
    message: str | None = None
    seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose one of {', '.join(KINDS)}")

    def chunks_before(self) -> int:
        """Chunks (or bytes) sent before a stream-level fault fires."""
        return self.after if self.after is not None else _DEFAULT_AFTER.get(self.kind, 0)

    def error_message(self) -> str:
        return self.message or "internal server error"


class FaultBook:
    """The active faults, consumed request by request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.released = threading.Event()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(replace(fault))
            self.released = threading.Event()

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.released.set()

    def active(self, kind: str) -> bool:
        with self._lock:
            return any(f.kind == kind for f in self._faults)

    def take(self, path: str, kinds: tuple[str, ...]) -> list[Fault]:
        """Faults of ``kinds`` matching ``path``; each use counts against ``times``."""
        taken = []
        with self._lock:
            for fault in list(self._faults):
                if fault.kind not in kinds or (fault.path and not path.startswith(fault.path)):
                    continue
                taken.append(replace(fault))
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
        return taken

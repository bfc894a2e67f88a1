"""HTTP/1.1 plumbing: routing like gin, responses like Go's net/http, fault application.

Plain bodies carry ``Content-Length``; streams use chunked transfer encoding with one
chunk per NDJSON line or SSE event, and their headers go out with the first chunk (as
when gin flushes its first write).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import struct
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .faults import STREAM_KINDS, Fault
from .models import go_json

if TYPE_CHECKING:
    from .server import Emulator

JSON_GIN = "application/json; charset=utf-8"
JSON_PLAIN = "application/json"
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
_MALFORMED = {
    "ndjson": b'{"model":"emulator","created_at":"2025-01-01T00:00:00Z","message":{"content":\n',
    "sse": b'data: {"id":"chatcmpl-0","object":"chat.completion.chunk","choices":[{"delta":\n\n',
    "responses": b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",\n\n',
}


class ApiError(Exception):
    """An error answer: ``{"error": message}`` natively, OpenAI-shaped under ``/v1``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Aborted(Exception):
    """The response ended early (fault, client gone, or server stopping)."""


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes | None
    json: Any
    time: float = field(default_factory=time.time)


def openai_error(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def go_decode_error(body: bytes) -> str:
    """A message shaped like Go's encoding/json error for an invalid body."""
    text = body.decode("utf-8", "replace").lstrip()
    if text and text[0] not in '{["-0123456789tfn':
        return f"invalid character {text[0]!r} looking for beginning of value"
    return "unexpected EOF"


# ---------------------------------------------------------------- canonical paths and hosts


def clean_path(path: str) -> str:
    """Go's ``path.Clean`` as the mux applies it (a trailing slash is kept).

    >>> clean_path("//v1/models"), clean_path("/./api/tags"), clean_path("/api/"), clean_path("")
    ('/v1/models', '/api/tags', '/api/', '/')
    """
    if not path:
        return "/"
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def allowed_host(listen: str, host_header: str) -> bool:
    """Ollama's allowed-hosts check (server/routes.go ~1776-1839).

    >>> allowed_host("127.0.0.1", "127.0.0.1:11434"), allowed_host("127.0.0.1", "ollama.example.com")
    (True, False)
    >>> allowed_host("127.0.0.1", "box.local"), allowed_host("0.0.0.0", "ollama.example.com")
    (True, True)
    """
    try:
        if not ipaddress.ip_address(listen).is_loopback:
            return True
    except ValueError:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (address.is_loopback or address.is_private or address.is_unspecified):
        return True
    if host in ("", "localhost") or host == socket.gethostname().lower():
        return True
    return host.endswith((".localhost", ".local", ".internal"))


# ---------------------------------------------------------------- routing

Handler = Callable[..., None]


@dataclass
class Route:
    methods: tuple[str, ...]
    pattern: str
    handler: Handler
    raw_body: bool = False
    available: Callable[[], bool] | None = None

    def match(self, path: str) -> dict[str, str] | None:
        if self.pattern == "/":
            return {} if path == "/" else None
        want, got = self.pattern[1:].split("/"), path[1:].split("/")
        if len(want) != len(got):
            return None
        params = {}
        for expected, actual in zip(want, got, strict=True):
            if expected.startswith(":"):
                if not actual:
                    return None
                params[expected[1:]] = actual
            elif expected != actual:
                return None
        return params


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, methods: str, pattern: str, handler: Handler, raw_body: bool = False,
            available: Callable[[], bool] | None = None) -> None:
        """``available`` hides a route (gin's 404) for server versions that lack it."""
        self.routes.append(Route(tuple(methods.split()), pattern, handler, raw_body, available))

    def resolve(self, method: str, path: str) -> tuple[str, Route | None, dict[str, str]]:
        """("ok", route, params) | ("redirect", None, {}) | ("405"|"404", None, {})."""
        routes = [r for r in self.routes if r.available is None or r.available()]
        matching = [(route, params) for route in routes if (params := route.match(path)) is not None]
        for route, params in matching:
            if method in route.methods:
                return "ok", route, params
        if matching:
            return "405", None, {}
        if path != "/" and path.endswith("/") and any(r.match(path.rstrip("/")) is not None
                                                      for r in routes):
            return "redirect", None, {}
        return "404", None, {}


# ---------------------------------------------------------------- one request


class Exchange:
    """One request and the means to answer it."""

    def __init__(self, handler: RequestHandler, record: RecordedRequest, faults: list[Fault]):
        self.handler = handler
        self.emu: Emulator = handler.server.emulator  # type: ignore[attr-defined]
        self.record = record
        self.method = record.method
        self.path = record.path
        self.headers = record.headers
        self.faults = faults
        self.started = time.monotonic()
        self.stream: StreamWriter | None = None

    @property
    def openai(self) -> bool:
        return self.path.startswith("/v1/")

    def json_body(self) -> dict[str, Any]:
        """The JSON object body; errors like gin's ShouldBindJSON."""
        body = self.record.body or b""
        if not body.strip():
            raise ApiError(400, "missing request body")
        if self.record.json is None or not isinstance(self.record.json, dict):
            if isinstance(self.record.json, (list, str, int, float)):
                raise ApiError(400, "json: cannot unmarshal value into Go value of type object")
            raise ApiError(400, go_decode_error(body))
        return self.record.json

    # -------------------------------------------------- plain answers

    def send(self, status: int, body: bytes, content_type: str | None,
             headers: tuple[tuple[str, str], ...] = ()) -> None:
        fault = self._take_fault("http_500")
        if fault is not None:
            self.fail(ApiError(fault.status, fault.error_message()))
            return
        stall = self._take_fault("stall")
        if stall is not None:
            self.emu.stall(stall.seconds)
        reset = self._take_fault("reset")
        if self._take_fault("malformed_json") is not None:
            body = body[: len(body) // 2]
        head = [("Content-Type", content_type)] if content_type else []
        head += [*headers, ("Content-Length", str(len(body)))]
        self.handler.write_head(status, head)
        if reset is not None:
            self.handler.write(body[: reset.after or 0])
            self.abort_connection()
        if self.method != "HEAD":
            self.handler.write(body)

    def send_json(self, status: int, value: Any, gin: bool = True) -> None:
        """``gin=True``: like ``c.JSON``; else like ``json.NewEncoder`` (newline, no charset)."""
        if gin:
            self.send(status, go_json(value), JSON_GIN)
        else:
            self.send(status, go_json(value) + b"\n", JSON_PLAIN)

    def send_text(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send(status, text.encode(), content_type)

    def send_empty(self, status: int = 200) -> None:
        self.send(status, b"", None)

    def fail(self, error: ApiError) -> None:
        """Answer an error, or end the stream with an error line once it has started."""
        if self.stream is not None and self.stream.started:
            self.stream.error(error.message)
            return
        self.faults = []
        if self.openai:
            self.send_json(error.status, openai_error(error.status, error.message), gin=False)
        else:
            self.send_json(error.status, {"error": error.message})

    # -------------------------------------------------- streams

    def open_stream(self, content_type: str, kind: str,
                    headers: tuple[tuple[str, str], ...] = ()) -> StreamWriter:
        self.stream = StreamWriter(self, content_type, kind, headers)
        return self.stream

    def _take_fault(self, kind: str) -> Fault | None:
        for fault in self.faults:
            if fault.kind == kind:
                self.faults.remove(fault)
                return fault
        return None

    def abort_connection(self) -> None:
        self.handler.abort()
        raise Aborted("connection reset by fault")


class StreamWriter:
    """A chunked response; faults fire before the chunk whose index is ``after``."""

    def __init__(self, exchange: Exchange, content_type: str, kind: str,
                 headers: tuple[tuple[str, str], ...]):
        self.exchange = exchange
        self.content_type = content_type
        self.kind = kind
        self.headers = headers
        self.started = False
        self.sent = 0

    def _start(self) -> None:
        if not self.started:
            self.started = True
            head = [("Content-Type", self.content_type), *self.headers, ("Transfer-Encoding", "chunked")]
            self.exchange.handler.write_head(200, head)

    def _chunk(self, data: bytes) -> None:
        self._start()
        self.exchange.handler.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _fire_faults(self) -> None:
        for fault in [f for f in self.exchange.faults if f.kind in STREAM_KINDS]:
            if fault.chunks_before() != self.sent:
                continue
            self.exchange.faults.remove(fault)
            if fault.kind == "stall":
                self.exchange.emu.stall(fault.seconds)
            elif fault.kind == "reset":
                self._start()
                self.exchange.abort_connection()
            elif fault.kind == "malformed_json":
                self._chunk(_MALFORMED[self.kind])
                self.end()
                raise Aborted("malformed chunk sent")
            else:
                self.error(fault.error_message())
                raise Aborted("error injected mid-stream")

    def send(self, data: bytes) -> None:
        self._fire_faults()
        self._chunk(data)
        self.sent += 1

    def send_json_line(self, value: Any) -> None:
        self.send(go_json(value) + b"\n")

    def send_sse(self, value: Any, event: str | None = None) -> None:
        data = value if isinstance(value, bytes) else go_json(value)
        prefix = f"event: {event}\n".encode() if event else b""
        self.send(prefix + b"data: " + data + b"\n\n")

    def error(self, message: str) -> None:
        """An error after the stream started. Natively an ``{"error"}`` line. Under ``/v1`` the
        OpenAI writer parses the error as an empty chunk (server/routes.go ~2120,
        middleware/openai.go ~80-131, ~513-529): chat gets one empty-content chunk, Responses
        nothing; then the stream ends with no finish chunk, no ``[DONE]``, no ``response.failed``."""
        if self.kind == "ndjson":
            self._chunk(go_json({"error": message}) + b"\n")
        elif self.kind == "sse":
            empty = {"id": "chatcmpl-0", "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": "", "system_fingerprint": "fp_ollama",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                  "finish_reason": None}]}
            self._chunk(b"data: " + go_json(empty) + b"\n\n")
        self.end()

    def end(self) -> None:
        self._start()
        self.exchange.handler.write(b"0\r\n\r\n")


# ---------------------------------------------------------------- the handler


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Go's net/http sets TCP_NODELAY; without it a reused keep-alive connection waits ~40 ms per request
    # for the delayed ACK, which slows every test and skews timing measurements.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.emulator._connections.add(self)  # type: ignore[attr-defined]

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()
        self.server.emulator._connections.discard(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def write_head(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()

    def write(self, data: bytes) -> None:
        if data:
            self.wfile.write(data)

    def abort(self) -> None:
        """Close the connection with a TCP reset."""
        self.close_connection = True
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for stream in (self.rfile, self.wfile):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        sock.close()

    def _read_body(self) -> bytes:
        return b"".join(self.iter_body())

    def iter_body(self) -> Iterator[bytes]:
        """The request body in pieces (Content-Length or chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            piece = self.rfile.read(min(remaining, 1 << 20))
            if not piece:
                raise Aborted("client closed the body early")
            remaining -= len(piece)
            yield piece

    def _dispatch(self) -> None:
        emu: Emulator = self.server.emulator  # type: ignore[attr-defined]
        # The request line as sent (http.server folds a leading "//" away), and no bare urlsplit,
        # which would take "//v1" in "//v1/models" for a host name.
        words = self.requestline.split()
        raw_path, _, query = (words[1] if len(words) >= 2 else self.path).partition("?")
        url = urlsplit("http://emulator" + raw_path.split("#")[0] + (f"?{query}" if query else ""))
        clean = clean_path(url.path)
        if clean != url.path:
            # gin sits on Go's default mux, which redirects non-canonical paths with 301, POST
            # included (server/routes.go ~2000, ~2018); the body is not read.
            self._redirect(clean + (f"?{url.query}" if url.query else ""))
            return
        if not allowed_host(self.server.server_address[0], self.headers.get("Host", "")):  # type: ignore[attr-defined]
            # Listening on loopback, a non-local Host header gets 403 with an empty body
            # (server/routes.go ~1776-1839).
            self.close_connection = True
            self.write_head(403, [("Content-Length", "0")])
            return
        path = url.path
        verdict, route, params = emu.router.resolve(self.command, path)
        raw = route is not None and route.raw_body
        body = None if raw else self._read_body()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        record = RecordedRequest(self.command, path, url.query,
                                 {k.lower(): v for k, v in self.headers.items()}, body, parsed)
        emu._record(record)
        exchange = Exchange(self, record, emu.faults.take(path, STREAM_KINDS))
        try:
            self._answer(exchange, verdict, route, params)
        except ApiError as error:
            exchange.fail(error)
        except (Aborted, ConnectionError, TimeoutError, InterruptedError):
            self.close_connection = True
        except OSError as error:  # a file operation failed: Go would answer err.Error()
            exchange.fail(ApiError(500, f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")))
        except Exception as error:  # an emulator bug: show it, and answer 500
            traceback.print_exc()
            exchange.fail(ApiError(500, f"emulator error: {error!r}"))

    def _answer(self, exchange: Exchange, verdict: str, route: Route | None, params: dict[str, str]) -> None:
        immediate = next((f for f in exchange.faults
                          if f.kind == "http_500" and f.chunks_before() == 0), None)
        if immediate is not None:
            exchange.faults.remove(immediate)
            raise ApiError(immediate.status, immediate.error_message())
        if verdict == "404":
            exchange.send_text(404, "404 page not found", "text/plain")
        elif verdict == "405":
            exchange.send_text(405, "405 method not allowed", "text/plain")
        elif verdict == "redirect":
            status = 301 if self.command == "GET" else 307
            location = exchange.path.rstrip("/")
            exchange.send(status, b"", None, (("Location", location),))
        else:
            assert route is not None
            route.handler(exchange, **params)

    def _redirect(self, location: str) -> None:
        self.close_connection = True
        body = b""
        head = [("Location", location)]
        if self.command in ("GET", "HEAD"):
            body = f'<a href="{location}">Moved Permanently</a>.\n\n'.encode()
            head.append(("Content-Type", "text/html; charset=utf-8"))
        self.write_head(301, [*head, ("Content-Length", str(len(body)))])
        if self.command != "HEAD":
            self.write(body)

    do_GET = do_POST = do_HEAD = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _dispatch

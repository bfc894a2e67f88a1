"""Any OpenAI-compatible server over httpx: Ollama's `/v1`, llama.cpp's llama-server, LM Studio, vLLM, a gateway.

Used by `check` (the `/v1` probes) and `bench --base-url` (streamed chat completions with per-event
timestamps), so the same code reads every server the same way.

Three promises:
- Nothing hangs. Every call has a connect timeout, a read timeout (longest silence) and a total deadline;
  streams check the deadline at every line, so a server that trickles bytes forever is cut off too.
- Every transport failure becomes a distinct typed error naming the URL: connection refused, DNS failure, TLS
  error, timeout, reset. An HTTP error status becomes `HTTPStatusError` carrying the server's own message.
- The API key is read from an environment variable (as Codex's `env_key` does), sent as a bearer token and
  never stored anywhere printable: httpx masks `authorization` in its repr, and this module never logs it.

URLs are joined like Codex joins them: trailing slashes of the base are dropped, then `/<path>` is appended.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

from localcodex.adapters.http_errors import (
    BadURL,
    ConnectionRefused,
    ConnectionReset,
    DNSFailure,
    EndpointError,
    EndpointTimeout,
    MalformedAnswer,
    MissingEnvKey,
    Timeouts,
    TLSFailure,
    Unreachable,
    classify,
)
from localcodex.adapters.sse import SSEEvent, iter_sse
from localcodex.errors import ServerError

if TYPE_CHECKING:
    import httpx

# The errors are defined in http_errors; callers import them from here, with the client that raises them.
__all__ = [
    "BadURL",
    "ConnectionRefused",
    "ConnectionReset",
    "DNSFailure",
    "EndpointError",
    "EndpointTimeout",
    "EventStream",
    "HTTPStatusError",
    "MalformedAnswer",
    "MissingEnvKey",
    "OpenAICompatClient",
    "Reply",
    "TLSFailure",
    "Timeouts",
    "Unreachable",
    "classify",
]

# A server's error body is quoted in messages; more than this is noise.
_SNIPPET = 200
# Non-streamed answers larger than this are cut (a probe never needs more; a broken server might send forever).
_MAX_BODY = 8 * 1024 * 1024


# -- replies ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, whatever its status (probes judge it; `raise_for_status` makes it an error)."""

    url: str
    status: int
    headers: Mapping[str, str]
    text: str
    elapsed_s: float

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def server(self) -> str | None:
        return self.headers.get("server")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise MalformedAnswer(
                f"{self.url} answered with malformed JSON ({exc}): {_snippet(self.text)!r}",
                "the server or a proxy in between sent something that is not JSON: check its log",
                url=self.url,
            ) from exc

    def error_message(self) -> str:
        """The server's own words: an OpenAI `{"error": {"message"}}`, Ollama's `{"error": "…"}`, or the text."""
        try:
            body = json.loads(self.text)
        except ValueError:
            return _snippet(self.text) or "(empty body)"
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return body["message"]
        return _snippet(self.text)

    def describe(self) -> str:
        """A short account of what answered, for people: status, content type, server, first words."""
        parts = [f"HTTP {self.status}"]
        if self.content_type:
            parts.append(self.content_type)
        if self.server:
            parts.append(f"server {self.server}")
        text = self.error_message() if not self.ok else _snippet(self.text, 60)
        return f"{', '.join(parts)}: {text!r}" if text else ", ".join(parts)

    def raise_for_status(self) -> Reply:
        if not self.ok:
            raise HTTPStatusError(
                f"{self.url} answered HTTP {self.status}: {self.error_message()}",
                _status_hint(self.status, self.text),
                url=self.url, reply=self,
            )
        return self


def _snippet(text: str, limit: int = _SNIPPET) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


HOST_CHECK_FIX = ("not a key problem: Ollama listening on loopback refuses requests whose Host (or Origin) header is "
                  "not a local name. Use http://127.0.0.1:11434 or localhost instead of an /etc/hosts alias; behind a "
                  "reverse proxy rewrite Host to localhost:11434 (nginx: proxy_set_header Host localhost:11434); "
                  "for browser origins add them to OLLAMA_ORIGINS")


def host_check_refusal(status: int, text: str) -> bool:
    """Ollama's allowed-hosts check: 403 with an empty body (server/routes.go ~1776-1839), not an auth refusal."""
    return status == 403 and not text.strip()


def _status_hint(status: int, text: str = "x") -> str | None:
    if host_check_refusal(status, text):
        return HOST_CHECK_FIX
    if status in (401, 403):
        return "the server wants a valid API key: set env_key in the provider and export the variable"
    if status == 404:
        return "check the base URL (it usually ends in /v1) and the model name"
    if status >= 500:
        return "the server failed: check its log (out of memory? model failed to load?) and retry"
    return None


class HTTPStatusError(EndpointError, ServerError):
    kind = "http"

    def __init__(self, message: str, hint: str | None = None, *, url: str, reply: Reply) -> None:
        super().__init__(message, hint, url=url)
        self.reply = reply
        self.status = reply.status


# -- streams ----------------------------------------------------------------------------------------------------


@dataclass
class EventStream:
    """An open SSE answer: iterate it for `SSEEvent`s (each stamped with `received_at`, perf_counter).

    `sent_at` is when the request was sent (perf_counter) and `opened_at` when the headers arrived, so
    time-to-first-token is `event.received_at - sent_at`. Close it (or use `with`) if you stop early.
    """

    url: str
    status: int
    headers: Mapping[str, str]
    sent_at: float
    opened_at: float
    _response: Any = field(repr=False)
    _timeouts: Timeouts = field(repr=False)
    _deadline: float = field(repr=False)
    _watchdog: _Watchdog = field(repr=False)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def __iter__(self) -> Iterator[SSEEvent]:
        try:
            yield from iter_sse(self._lines())
        finally:
            self.close()

    def _lines(self) -> Iterator[str]:
        try:
            yield from self._response.iter_lines()
        except Exception as exc:
            raise _failure(exc, self.url, self._timeouts, self._deadline, self._watchdog, streaming=True) from exc
        if self._watchdog.fired:  # the shut-down socket read as a clean end of a read-until-close body
            raise _deadline_error(self.url, self._timeouts)

    def close(self) -> None:
        self._watchdog.cancel()
        self._response.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _failure(
    exc: Exception, url: str, t: Timeouts, deadline: float, watchdog: _Watchdog | None = None, *,
    streaming: bool = False,
) -> EndpointError:
    """Classify a failure; one that happened because the deadline ran out says so (read timeouts and the
    connect timeout are capped at the deadline, so they can fire at the same moment)."""
    import httpx

    fired = watchdog is not None and watchdog.fired
    late = time.perf_counter() >= deadline - 0.02 and isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout))
    if fired or late:
        return _deadline_error(url, t)
    return classify(exc, url, t, streaming=streaming)


def _deadline_error(url: str, t: Timeouts) -> EndpointTimeout:
    return EndpointTimeout(
        f"{url} did not finish within {t.named}",
        "a slow model on a slow machine may need more: raise --timeout",
        url=url, phase="deadline", seconds=t.limit if t.limit is not None else t.total,
    )


class _Watchdog:
    """Enforces a call's total deadline while its body is read: at the deadline it shuts the socket down,
    which wakes a blocked read at once (a read timeout alone would let a trickling server run on forever)."""

    def __init__(self, response: httpx.Response, deadline: float) -> None:
        self.fired = False
        stream = response.extensions.get("network_stream")
        self._socket = stream.get_extra_info("socket") if stream is not None else None
        self._timer = threading.Timer(max(0.0, deadline - time.perf_counter()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


# -- the client -------------------------------------------------------------------------------------------------


class OpenAICompatClient:
    """One OpenAI-compatible base URL (e.g. `http://127.0.0.1:11434/v1`). Raises only LocalcodexError."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key_env: str | None = None,
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        import httpx

        self.base_url = base_url
        self.api_key_env = api_key_env
        self.timeouts = timeouts or Timeouts()
        sent = {"user-agent": _user_agent(), **{k.lower(): v for k, v in (headers or {}).items()}}
        if api_key_env:
            key = (os.environ if env is None else env).get(api_key_env, "")
            if not key.strip():
                raise MissingEnvKey(api_key_env)
            sent["authorization"] = f"Bearer {key.strip()}"
        self._http = httpx.Client(headers=sent, follow_redirects=False)

    def __repr__(self) -> str:  # never the key: only where it comes from
        key = f", api_key_env={self.api_key_env!r}" if self.api_key_env else ""
        return f"OpenAICompatClient({self.base_url!r}{key})"

    @property
    def sends_key(self) -> bool:
        return "authorization" in self._http.headers

    def url(self, path: str) -> str:
        """Join like Codex: `base.rstrip('/') + '/' + path.lstrip('/')`; an absolute URL is used as is.

        >>> OpenAICompatClient("http://h:1/v1/").url("/responses")
        'http://h:1/v1/responses'
        >>> OpenAICompatClient("http://h:1/v1").url("http://h:1/api/version")
        'http://h:1/api/version'
        """
        if "://" in path:
            return path
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    # -- raw ------------------------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, *, timeouts: Timeouts | None = None
    ) -> Reply:
        """Send one request and read the whole answer, whatever its status. Transport failures raise."""
        t = timeouts or self.timeouts
        url = self.url(path)
        started = time.perf_counter()
        deadline = started + t.total
        response, watchdog = self._send(method, url, body, t, deadline, accept="application/json")
        try:
            data = self._read_body(response)
        except Exception as exc:
            raise _failure(exc, url, t, deadline, watchdog) from exc
        finally:
            watchdog.cancel()
            response.close()
        if watchdog.fired:
            raise _deadline_error(url, t)
        text = data.decode(response.encoding or "utf-8", errors="replace")
        return Reply(url, response.status_code, dict(response.headers), text, time.perf_counter() - started)

    @staticmethod
    def _read_body(response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_BODY:
                break
        return b"".join(chunks)

    def stream(self, path: str, body: Any, *, timeouts: Timeouts | None = None) -> EventStream:
        """POST and open an SSE answer. A non-2xx status is read and raised as HTTPStatusError at once."""
        t = timeouts or self.timeouts
        url = self.url(path)
        sent_at = time.perf_counter()
        deadline = sent_at + t.total
        response, watchdog = self._send("POST", url, body, t, deadline, accept="text/event-stream")
        headers = dict(response.headers)
        if not 200 <= response.status_code < 300:
            try:
                text = self._read_body(response).decode("utf-8", errors="replace")
            except Exception as exc:
                raise _failure(exc, url, t, deadline, watchdog) from exc
            finally:
                watchdog.cancel()
                response.close()
            reply = Reply(url, response.status_code, headers, text, time.perf_counter() - sent_at)
            reply.raise_for_status()
        opened = time.perf_counter()
        return EventStream(url, response.status_code, headers, sent_at, opened, response, t, deadline, watchdog)

    def _send(
        self, method: str, url: str, body: Any, t: Timeouts, deadline: float, *, accept: str
    ) -> tuple[httpx.Response, _Watchdog]:
        """Send and wait for the headers (bounded by the connect and read timeouts, both capped at the
        deadline); then a watchdog guards the body against the deadline."""
        try:
            request = self._http.build_request(
                method, url, json=body, headers={"accept": accept},
                timeout=t.httpx(deadline - time.perf_counter()),
            )
            response = self._http.send(request, stream=True)
        except Exception as exc:
            raise _failure(exc, url, t, deadline) from exc
        return response, _Watchdog(response, deadline)

    # -- the API ----------------------------------------------------------------------------------------------

    def models(self, *, timeouts: Timeouts | None = None) -> list[str]:
        """Model ids from `GET /models` (Ollama answers `"data": null` when nothing is installed)."""
        reply = self.request("GET", "models", timeouts=timeouts).raise_for_status()
        body = reply.json()
        data = body.get("data") if isinstance(body, dict) else None
        if data is None and isinstance(body, dict) and ("data" in body or body.get("object") == "list"):
            return []
        if not isinstance(data, list):
            raise MalformedAnswer(
                f"{reply.url} did not answer with a model list: {_snippet(reply.text)!r}",
                "this is not an OpenAI-compatible /models endpoint: check the base URL",
                url=reply.url,
            )
        return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]

    @overload
    def responses(
        self, body: Mapping[str, Any], *, stream: Literal[False] = ..., timeouts: Timeouts | None = ...
    ) -> dict[str, Any]: ...

    @overload
    def responses(
        self, body: Mapping[str, Any], *, stream: Literal[True], timeouts: Timeouts | None = ...
    ) -> EventStream: ...

    def responses(
        self, body: Mapping[str, Any], *, stream: bool = False, timeouts: Timeouts | None = None
    ) -> dict[str, Any] | EventStream:
        """`POST /responses`: the parsed object, or (stream=True) the open event stream."""
        return self._call("responses", body, stream, timeouts)

    @overload
    def chat_completions(
        self, body: Mapping[str, Any], *, stream: Literal[False] = ..., timeouts: Timeouts | None = ...
    ) -> dict[str, Any]: ...

    @overload
    def chat_completions(
        self, body: Mapping[str, Any], *, stream: Literal[True], timeouts: Timeouts | None = ...
    ) -> EventStream: ...

    def chat_completions(
        self, body: Mapping[str, Any], *, stream: bool = False, timeouts: Timeouts | None = None
    ) -> dict[str, Any] | EventStream:
        """`POST /chat/completions`: the parsed object, or (stream=True) the open event stream."""
        return self._call("chat/completions", body, stream, timeouts)

    def _call(
        self, path: str, body: Mapping[str, Any], stream: bool, timeouts: Timeouts | None
    ) -> dict[str, Any] | EventStream:
        payload = {**body, "stream": stream}
        if stream:
            return self.stream(path, payload, timeouts=timeouts)
        reply = self.request("POST", path, payload, timeouts=timeouts).raise_for_status()
        parsed = reply.json()
        if not isinstance(parsed, dict):
            raise MalformedAnswer(
                f"{reply.url} answered with JSON that is not an object: {_snippet(reply.text)!r}", url=reply.url
            )
        return parsed

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenAICompatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _user_agent() -> str:
    from localcodex import __version__

    return f"localcodex/{__version__}"

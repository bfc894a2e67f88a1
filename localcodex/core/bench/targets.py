"""The two kinds of endpoint `bench` measures, each turning one streamed request into a `Sample`.

Ollama's native API gives the server's own nanosecond counters; any OpenAI-compatible `/v1` server gives only
what the client sees (token arrival times, and `usage` when `stream_options.include_usage` is honoured).
Each thread gets its own HTTP client, built before the clock starts, so parallel requests run in parallel and
client set-up never counts as time to first token.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from localcodex.adapters.ollama import OllamaServer
from localcodex.domain.bench import ModelInfo
from localcodex.errors import LocalcodexError, ServerError, UsageError

if TYPE_CHECKING:  # httpx comes with it: imported by the wiring only for an OpenAI-compatible endpoint
    from localcodex.adapters.openai_compat import OpenAICompatClient

# -- one request, measured -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """What one request measured, before it is named and turned into rates."""

    started: float  # perf_counter at send
    ended: float
    started_wall: float  # time.time() at send, for the record
    error: LocalcodexError | None = None
    first_at: float | None = None
    last_at: float | None = None
    chunks: int = 0
    done_reason: str | None = None
    counters: dict[str, int | None] = field(default_factory=dict)
    completion_tokens: int | None = None  # usage (OpenAI-compatible) or eval_count
    prompt_count: int | None = None  # prompt_eval_count or usage.prompt_tokens
    source: str | None = None  # whose counters `counters` are ("ollama", "llama.cpp"); None: client timing only


class Stopwatch:
    """Client-side timing of one streamed request."""

    def __init__(self) -> None:
        self.started_wall = time.time()
        self.started = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.chunks = 0

    def token(self, at: float, has_text: bool) -> None:
        if has_text:
            self.chunks += 1
            self.first = self.first if self.first is not None else at
            self.last = at

    def sample(self, error: LocalcodexError | None = None, **values: Any) -> Sample:
        return Sample(self.started, time.perf_counter(), self.started_wall, error, self.first, self.last, self.chunks,
                      **values)


@dataclass(frozen=True)
class Loaded:
    context_length: int | None
    gpu_fraction: float | None


class Endpoint(Protocol):
    api: str
    endpoint: str
    is_local: bool
    has_counters: bool

    def preflight(self, models: Sequence[str], limit: float = ...) -> tuple[str | None, tuple[ModelInfo, ...]]: ...
    def prepare(self, timeout: float) -> None: ...
    def measure(self, model: str, prompt: str, num_predict: int, seed: int, timeout: float,
                total: float | None = None, step: str = "request") -> Sample: ...
    def loaded(self, model: str) -> Loaded | None: ...


PREFLIGHT_LIMIT = 60.0  # seconds for the version and model look-ups before a benchmark


class OllamaEndpoint:
    """Ollama's native API through `OllamaServer` (one client per thread, so parallel requests are parallel)."""

    api = "ollama"
    has_counters = True

    def __init__(self, server: OllamaServer, keep_alive: str) -> None:
        self._first = server  # each thread gets its own client of this server (its own connection)
        self.host = server.host
        self.endpoint = self.host.native
        self.is_local = self.host.is_local
        self.keep_alive = keep_alive
        self._local = threading.local()

    def _server(self, timeout: float) -> OllamaServer:
        """This thread's server client, re-timed in place so its open connection is kept."""
        server = getattr(self._local, "server", None)
        if server is None:
            server = self._first.with_timeout(timeout)
            self._local.server = server
        elif server.timeout != timeout:
            server.set_timeout(timeout)
        return server

    def prepare(self, timeout: float) -> None:
        """Open this thread's connection before the clock starts (a new connection costs a round trip or more)."""
        if getattr(self._local, "server", None) is None:
            with contextlib.suppress(LocalcodexError):
                self._server(timeout).ps()
        self._server(timeout)

    def preflight(self, models: Sequence[str], limit: float = PREFLIGHT_LIMIT
                  ) -> tuple[str | None, tuple[ModelInfo, ...]]:
        server = self._server(min(30.0, limit))
        with server.deadline(limit, "bench: asking the server about the models"):
            version = server.version()
            return version, tuple(self._model_info(server, m) for m in models)

    @staticmethod
    def _model_info(server: Any, model: str) -> ModelInfo:
        details = server.show(model)
        if details.capabilities and "completion" not in details.capabilities:
            raise UsageError(f"{model} cannot generate text (capabilities: {', '.join(details.capabilities)})",
                             "benchmark a chat or code model, not an embedding model")
        installed = server.find(model)
        return ModelInfo(model, installed.digest if installed else None, details.num_ctx)

    def measure(self, model: str, prompt: str, num_predict: int, seed: int, timeout: float,
                total: float | None = None, step: str = "request") -> Sample:
        server = self._server(timeout)
        options = {"temperature": 0, "seed": seed, "num_predict": num_predict}
        watch = Stopwatch()
        final = None
        try:
            with server.deadline(total, step):
                for part in server.generate_stream(model, prompt, options=options, keep_alive=self.keep_alive):
                    watch.token(time.perf_counter(), bool(part.response or getattr(part, "thinking", None)))
                    if part.done:
                        final = part
        except LocalcodexError as exc:
            return watch.sample(exc)
        if final is None:
            return watch.sample(_ended_early(model))
        counters = {name: _ns(getattr(final, name, None)) for name in _COUNTERS}
        return watch.sample(None, done_reason=final.done_reason, counters=counters,
                            completion_tokens=counters["eval_count"], prompt_count=counters["prompt_eval_count"],
                            source="ollama")

    def loaded(self, model: str) -> Loaded | None:
        from localcodex.adapters.ollama import same_model

        try:
            running = self._server(30.0).ps()
        except LocalcodexError:
            return None
        entry = next((m for m in running if same_model(m.name, model)), None)
        if entry is None:
            return None
        return Loaded(entry.context_length, entry.gpu_fraction if entry.size else None)


_COUNTERS = ("load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration",
             "total_duration")


def _ns(value: Any) -> int | None:
    return None if value is None else int(value)


def _ended_early(model: str) -> LocalcodexError:
    return ServerError(f"asking {model}: the stream ended before the final counters", "retry")


class OpenAIEndpoint:
    """Any OpenAI-compatible `/v1` server through `OpenAICompatClient`. Its own counters when it sends them
    (llama.cpp's `timings` on the finish chunk); otherwise timed from the client: TTFT from the request's
    `sent_at` to the first event with text, decode from `received_at`."""

    api = "openai"
    has_counters = False

    def __init__(self, base_url: str, connect: Callable[[], OpenAICompatClient], *, is_local: bool) -> None:
        self.endpoint = base_url.rstrip("/")
        self.is_local = is_local
        self._connect = connect  # a new client of the endpoint (the key read from the invocation's environment)
        self._local = threading.local()

    def _client(self) -> OpenAICompatClient:
        """This thread's client (its own connection pool); MissingEnvKey when the key's variable is unset."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._connect()
            self._local.client = client
        return client

    def prepare(self, timeout: float) -> None:
        """Open this thread's connection before the clock starts."""
        if getattr(self._local, "client", None) is None:
            with contextlib.suppress(LocalcodexError):
                self._client().models()
        self._client()

    def preflight(self, models: Sequence[str], limit: float = PREFLIGHT_LIMIT
                  ) -> tuple[str | None, tuple[ModelInfo, ...]]:
        """Reachable, and the key accepted. A model missing from `GET /models` is only noted: some servers
        (llama-server) list one alias and answer to any name."""
        from localcodex.adapters.http_errors import Timeouts
        from localcodex.adapters.server_facts import server_context

        client = self._client()
        wait = min(30.0, limit)
        listed = set(client.models(timeouts=Timeouts(connect=min(5.0, wait), read=wait, total=limit)))
        infos = []
        for m in models:
            notes = [] if not listed or m in listed else [f"{self.endpoint}/models does not list {m}"]
            context = server_context(client, m)
            if context:
                notes.append(f"the server runs it with a {context.tokens}-token context ({context.source})")
            infos.append(ModelInfo(m, context_length=context.tokens if context else None, notes=tuple(notes)))
        return None, tuple(infos)

    def measure(self, model: str, prompt: str, num_predict: int, seed: int, timeout: float,
                total: float | None = None, step: str = "request") -> Sample:
        from localcodex.adapters.http_errors import StreamCut, Timeouts
        from localcodex.adapters.server_facts import timings_of

        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": num_predict,
                "temperature": 0, "seed": seed, "stream_options": {"include_usage": True}}
        limits = Timeouts(connect=min(10.0, timeout), read=timeout,
                          total=total if total is not None else timeout + float(num_predict))
        watch = Stopwatch()
        finish, usage, timings, terminated = None, None, None, False
        try:
            with self._client().chat_completions(body, stream=True, timeouts=limits) as stream:
                watch.started = stream.sent_at
                for event in stream:
                    if event.done:
                        terminated = True
                        break
                    chunk = event.json()
                    text, reason, used = chat_delta(chunk, self.endpoint)
                    watch.token(event.received_at, bool(text))
                    finish, usage = reason or finish, used or usage
                    timings = timings_of(chunk) or timings
            if not terminated:
                return watch.sample(StreamCut(self.endpoint, "data: [DONE]"))
        except LocalcodexError as exc:
            return watch.sample(exc)
        except ValueError as exc:
            return watch.sample(ServerError(f"{self.endpoint} sent an event that is not JSON: {exc}"))
        usage = usage or {}
        if timings is not None:  # the server's own counters (llama.cpp), preferred to the client's clock
            return watch.sample(None, done_reason=finish, counters=timings.counters(),
                                completion_tokens=_int(usage.get("completion_tokens")) or timings.predicted_n,
                                prompt_count=_int(usage.get("prompt_tokens")) or timings.prompt_n + timings.cache_n,
                                source="llama.cpp")
        return watch.sample(None, done_reason=finish, completion_tokens=_int(usage.get("completion_tokens")),
                            prompt_count=_int(usage.get("prompt_tokens")))

    def loaded(self, model: str) -> Loaded | None:
        return None


def chat_delta(chunk: Any, url: str) -> tuple[str, str | None, dict[str, Any] | None]:
    """(text, finish_reason, usage) of one Chat Completions chunk; text is content or reasoning.

    >>> chat_delta({"choices": [{"delta": {"content": "Hi"}, "finish_reason": None}]}, "u")
    ('Hi', None, None)
    >>> chat_delta({"choices": [], "usage": {"completion_tokens": 3}}, "u")
    ('', None, {'completion_tokens': 3})
    """
    if not isinstance(chunk, dict):
        raise ValueError(f"expected a JSON object, got {type(chunk).__name__}")
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ServerError(f"{url} failed in the middle of the answer: {message}", "check the server's log and retry")
    usage = chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None
    choices = chunk.get("choices") or []
    if not choices:
        return "", None, usage
    choice = choices[0] if isinstance(choices[0], dict) else {}
    delta = choice.get("delta") or {}
    text = delta.get("content") or delta.get("reasoning") or delta.get("reasoning_content") or ""
    return str(text), choice.get("finish_reason"), usage


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

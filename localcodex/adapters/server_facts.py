"""What an OpenAI-compatible server states about itself beyond the OpenAI API: the context it runs with, and
its own timing counters.

- llama.cpp's llama-server: `GET /props` -> `default_generation_settings.n_ctx`; `GET /v1/models` ->
  `data[].meta.n_ctx`; `timings` (prompt_n, prompt_ms, predicted_n, predicted_ms, cache_n) on a chat finish
  chunk, a non-streamed answer and the Responses API's `response.completed`.
- Ollama behind `/v1`: `GET /api/ps` -> `models[].context_length` of a loaded model.
- A prompt over the context: llama-server answers 400 `exceed_context_size_error` with `n_ctx`; Ollama a 400
  whose message says the input exceeds the context length.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from localcodex.errors import LocalcodexError


@dataclass(frozen=True)
class ServerContext:
    tokens: int
    source: str  # where it was read, e.g. "GET /props n_ctx"


def root_of(base_url: str) -> str:
    """The server's root for a `/v1` base URL.

    >>> root_of("http://127.0.0.1:8080/v1/"), root_of("http://h:1/api")
    ('http://127.0.0.1:8080', 'http://h:1/api')
    """
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def context_from_props(body: Any) -> int | None:
    """`/props` of llama-server.

    >>> context_from_props({"default_generation_settings": {"n_ctx": 8192}}), context_from_props({})
    (8192, None)
    """
    settings = body.get("default_generation_settings") if isinstance(body, dict) else None
    return _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None


def context_from_models(body: Any, model: str | None) -> int | None:
    """`meta.n_ctx` of `model` in a `/v1/models` answer (of its only entry when `model` is not listed).

    >>> body = {"data": [{"id": "smollm2:135m", "meta": {"n_ctx": 8192, "n_ctx_train": 8192}}]}
    >>> context_from_models(body, "smollm2:135m"), context_from_models(body, "other"), context_from_models({}, "x")
    (8192, 8192, None)
    """
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    entries = [e for e in data if isinstance(e, dict) and isinstance(e.get("meta"), dict)]
    named = [e for e in entries if e.get("id") == model]
    chosen = named or (entries if len(entries) == 1 else [])
    return _positive(chosen[0]["meta"].get("n_ctx")) if chosen else None


def context_from_ps(body: Any, model: str | None) -> int | None:
    """Ollama's `/api/ps`: `context_length` of the loaded `model` (by name or model field).

    >>> context_from_ps({"models": [{"name": "q:7b", "model": "q:7b", "context_length": 4096}]}, "q:7b")
    4096
    """
    models = body.get("models") if isinstance(body, dict) else None
    for entry in models if isinstance(models, list) else []:
        if isinstance(entry, dict) and model in (entry.get("name"), entry.get("model")):
            return _positive(entry.get("context_length"))
    return None


def server_context(client: Any, model: str | None, *, ollama_ps: bool = True) -> ServerContext | None:
    """The context `model` runs with as the server states it, or None. `client` is an OpenAICompatClient; every
    failure (404, not JSON, unreachable) only means "not stated here". `ollama_ps=False`: the server is known
    not to be Ollama, so its `/api/ps` is not asked."""
    from localcodex.adapters.openai_compat import Timeouts

    root = root_of(client.base_url)
    quick = Timeouts(connect=5.0, read=10.0, total=15.0)
    probes = (
        (f"{root}/props", lambda b: context_from_props(b), "GET /props default_generation_settings.n_ctx"),
        ("models", lambda b: context_from_models(b, model), "GET /v1/models meta.n_ctx"),
        (f"{root}/api/ps", lambda b: context_from_ps(b, model), "GET /api/ps context_length"),
    )[: 3 if ollama_ps else 2]
    for path, read, source in probes:
        try:
            reply = client.request("GET", path, timeouts=quick)
            if not reply.ok:
                continue
            tokens = read(json.loads(reply.text))
        except (LocalcodexError, ValueError):
            continue
        if tokens:
            return ServerContext(tokens, source)
    return None


_OVERFLOW = re.compile(r"exceed\w*[^.]{0,40}context|context (size|length|window)[^.]{0,30}exceed", re.IGNORECASE)
_N_CTX = re.compile(r"context size \((\d+) tokens\)")


@dataclass(frozen=True)
class Overflow:
    n_ctx: int | None  # the server's context, when it said


def context_overflow(error: LocalcodexError | None) -> Overflow | None:
    """An HTTP 400 saying the prompt is longer than the server's context, or None.

    >>> class E(LocalcodexError):
    ...     status = 400
    >>> context_overflow(E('answered HTTP 400: request (9031 tokens) exceeds the available context size '
    ...                    '(8192 tokens), try increasing it'))
    Overflow(n_ctx=8192)
    >>> context_overflow(E("the input length exceeds the context length")), context_overflow(E("bad")) is None
    (Overflow(n_ctx=None), True)
    """
    if error is None or getattr(error, "status", None) != 400:
        return None
    reply = getattr(error, "reply", None)
    text = f"{error.message} {getattr(reply, 'text', '')}"
    try:
        body = json.loads(getattr(reply, "text", "") or "null")
    except ValueError:
        body = None
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict) and detail.get("type") == "exceed_context_size_error":
        return Overflow(_positive(detail.get("n_ctx")))
    if not _OVERFLOW.search(text):
        return None
    found = _N_CTX.search(text)
    return Overflow(int(found.group(1)) if found else None)


@dataclass(frozen=True)
class Timings:
    """llama.cpp's own counters for one request."""

    prompt_n: int
    prompt_ms: float
    predicted_n: int
    predicted_ms: float
    cache_n: int = 0

    def counters(self) -> dict[str, int | None]:
        """As Ollama names its counters (durations in ns), so one rate computation serves both."""
        # one generated token has no decode time to speak of (llama.cpp reports ~0 ms): no decode rate then
        decode_ns = round(self.predicted_ms * 1e6) if self.predicted_n >= 2 else None
        return {"prompt_eval_count": self.prompt_n, "prompt_eval_duration": round(self.prompt_ms * 1e6),
                "eval_count": self.predicted_n, "eval_duration": decode_ns}


def timings_of(body: Any) -> Timings | None:
    """`timings` of a chat chunk/answer, or of a Responses event (top level or inside `response`).

    >>> timings_of({"timings": {"prompt_n": 32, "prompt_ms": 92.7, "predicted_n": 10, "predicted_ms": 88.2}})
    Timings(prompt_n=32, prompt_ms=92.7, predicted_n=10, predicted_ms=88.2, cache_n=0)
    >>> timings_of({"choices": []}) is None
    True
    """
    if not isinstance(body, dict):
        return None
    raw = body.get("timings")
    if raw is None and isinstance(body.get("response"), dict):
        raw = body["response"].get("timings")
    if not isinstance(raw, dict):
        return None
    try:
        return Timings(int(raw["prompt_n"]), float(raw["prompt_ms"]), int(raw["predicted_n"]),
                       float(raw["predicted_ms"]), int(raw.get("cache_n") or 0))
    except (KeyError, TypeError, ValueError):
        return None


def busy_slots(client: Any) -> int | None:
    """How many of llama-server's slots are working on a request (`GET /slots`), or None when the server has
    no such endpoint (not llama.cpp, or started with --no-slots)."""
    from localcodex.adapters.openai_compat import OpenAICompatClient, Timeouts

    # a connection of its own, closed after the answer: a kept-alive one held by the poll delays llama-server
    # noticing that the abandoned request's connection was closed (seen here: no cancel until it closed)
    try:
        with OpenAICompatClient(client.base_url, api_key_env=client.api_key_env,
                                headers={"connection": "close"}) as fresh:
            reply = fresh.request("GET", f"{root_of(client.base_url)}/slots",
                                  timeouts=Timeouts(connect=2.0, read=5.0, total=5.0))
        slots = json.loads(reply.text) if reply.ok else None
    except (LocalcodexError, ValueError):
        return None
    if not isinstance(slots, list):
        return None
    return sum(1 for s in slots if isinstance(s, dict) and s.get("is_processing"))


def wait_idle(client: Any, seconds: float, poll: float = 0.5) -> bool | None:
    """Wait up to `seconds` until no slot is busy. True: idle; False: still busy; None: cannot be seen.

    llama-server notices a closed connection between prefill batches on a plain request, but on a streamed one
    only once it has a token to send, i.e. after the whole prompt: the abandoned work then still holds the slot."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        busy = busy_slots(client)
        if busy is None or busy == 0:
            return None if busy is None else True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)

"""How fast the server works, measured once before the generation probes, and the time limits that follow.

A fixed limit per probe gives a slow CPU a timeout instead of a verdict: a 135M model on two cores prefills a
Codex-sized prompt in 30-60 s. So `check` first sends one short timed request (a few hundred prompt tokens, a
few answer tokens) and gives each generation probe its `--timeout` plus twice the time its own requests should
take at the measured prefill and decode rates. The server's own counters (llama.cpp's `timings`) are used when
it sends them, else the client's clock (prompt tokens / time to first token: a lower bound, so limits err long).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from localcodex.errors import LocalcodexError

PACE_WORDS = 300  # prompt of the timed request
PACE_ANSWER = 8  # tokens it asks for
SAFETY = 2.0  # a probe may take this many times what its requests should take
ANSWER_TOKENS = 512  # what a generation probe may let the model write when it sets no limit
CHARS_PER_TOKEN = 3.0  # JSON bodies: an estimate that errs towards more tokens


@dataclass(frozen=True)
class Pace:
    """The server's speed on the model, from one short request."""

    prompt_tps: float | None
    decode_tps: float | None
    source: str  # "llama.cpp timings", "Ollama counters" or "client timing"
    prompt_tokens: int | None
    seconds: float

    def data(self) -> dict[str, Any]:
        return {"prompt_tps": _r(self.prompt_tps), "decode_tps": _r(self.decode_tps), "source": self.source,
                "prompt_tokens": self.prompt_tokens, "seconds": round(self.seconds, 3)}


def _r(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def measure(client: Any, model: str, timeouts: Any, filler: str) -> Pace | None:
    """One streamed chat request with a `PACE_WORDS`-word prompt; None when it fails (the limits stay as given)."""
    from localcodex.adapters.server_facts import timings_of

    body = {"model": model, "messages": [{"role": "user", "content": f"{filler}\n\nReply with the word OK."}],
            "max_tokens": PACE_ANSWER, "temperature": 0, "stream_options": {"include_usage": True}}
    first: float | None = None
    last: float | None = None
    chunks, usage, timings = 0, None, None
    started = time.perf_counter()
    try:
        with client.chat_completions(body, stream=True, timeouts=timeouts) as stream:
            started = stream.sent_at
            for event in stream:
                if event.done:
                    break
                chunk = event.json()
                timings = timings_of(chunk) or timings
                if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                choices = chunk.get("choices") if isinstance(chunk, dict) else None
                delta = (choices[0] or {}).get("delta") or {} if choices and isinstance(choices[0], dict) else {}
                if delta.get("content") or delta.get("reasoning_content"):
                    chunks += 1
                    first = event.received_at if first is None else first
                    last = event.received_at
    except (LocalcodexError, ValueError, AttributeError, TypeError):
        return None
    seconds = time.perf_counter() - started
    if timings is not None and timings.prompt_ms > 0:
        decode = timings.predicted_n / timings.predicted_ms * 1e3 if timings.predicted_n > 1 and \
            timings.predicted_ms > 0 else None
        return Pace(timings.prompt_n / timings.prompt_ms * 1e3, decode, "llama.cpp timings",
                    timings.prompt_n + timings.cache_n, seconds)
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if not isinstance(tokens, int) or first is None:
        return None
    ttft = max(first - started, 1e-3)
    decode = (chunks - 1) / (last - first) if chunks > 1 and last is not None and last > first else None
    return Pace(tokens / ttft, decode, "client timing", tokens, seconds)


def measure_ollama(server: Any, model: str, timeout: float, filler: str) -> Pace | None:
    """The same on Ollama's native API, whose final chunk carries its own counters (eval_count, eval_duration)."""
    started = time.perf_counter()
    previous = server.timeout
    server.set_timeout(timeout)
    final = None
    try:
        for part in server.generate_stream(model, f"{filler}\n\nReply with the word OK.",
                                           options={"temperature": 0, "num_predict": PACE_ANSWER}):
            final = part if part.done else final
    except (LocalcodexError, AttributeError, TypeError):
        return None
    finally:
        server.set_timeout(previous)
    if final is None or not final.prompt_eval_count or not final.prompt_eval_duration:
        return None
    decode = final.eval_count / final.eval_duration * 1e9 if (final.eval_count or 0) > 1 and \
        final.eval_duration else None
    return Pace(final.prompt_eval_count / final.prompt_eval_duration * 1e9, decode, "Ollama counters",
                final.prompt_eval_count, time.perf_counter() - started)


def expected_seconds(pace: Pace | None, prompt_tokens: int, answer_tokens: int, requests: int = 1) -> float:
    """What `requests` requests of this size should take at `pace` (0 when unknown).

    >>> expected_seconds(Pace(100.0, 50.0, "client timing", 300, 3.0), 4000, 500, 2)
    100.0
    >>> expected_seconds(None, 4000, 500)
    0.0
    """
    if pace is None or not pace.prompt_tps:
        return 0.0
    decode = answer_tokens / pace.decode_tps if pace.decode_tps else 0.0
    return requests * (prompt_tokens / pace.prompt_tps + decode)


def limit(base: float, pace: Pace | None, prompt_tokens: int, answer_tokens: int = ANSWER_TOKENS,
          requests: int = 1) -> float:
    """A probe's time limit: `base` (--timeout) plus SAFETY times what its requests should take.

    >>> limit(60.0, Pace(100.0, 50.0, "client timing", 300, 3.0), 4000, 500, 2)
    260.0
    >>> limit(60.0, None, 4000)
    60.0
    """
    return base + SAFETY * expected_seconds(pace, prompt_tokens, answer_tokens, requests)


def tokens_of(body: Any) -> int:
    """An upper estimate of a request body's prompt tokens (its JSON length / CHARS_PER_TOKEN)."""
    import json

    return math.ceil(len(json.dumps(body)) / CHARS_PER_TOKEN)

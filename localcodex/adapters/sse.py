"""Server-sent events, parsed from any iterator of text lines (httpx's `Response.iter_lines()`).

Shared by `check` (the Responses and Chat Completions probes) and `bench` (streamed tokens with timestamps),
so both read the wire the same way: `event:` names the event, `data:` lines join with a newline, a blank line
ends the event, `:` starts a comment. Each event carries the monotonic time its last line arrived.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SSEEvent:
    event: str | None
    data: str
    received_at: float  # time.perf_counter() when the event was complete

    @property
    def done(self) -> bool:
        """True for the `data: [DONE]` sentinel that ends a Chat Completions stream."""
        return self.data.strip() == "[DONE]"

    def json(self) -> Any:
        """The data as JSON; raises ValueError (json.JSONDecodeError) when it is not."""
        return json.loads(self.data)


def iter_sse(lines: Iterable[str], clock: Callable[[], float] = time.perf_counter) -> Iterator[SSEEvent]:
    """Parse SSE lines into events.

    >>> stream = ["event: response.created", 'data: {"a": 1}', "", ": keep-alive", "data: [DONE]", ""]
    >>> [(e.event, e.data, e.done) for e in iter_sse(stream, clock=lambda: 0.0)]
    [('response.created', '{"a": 1}', False), (None, '[DONE]', True)]
    """
    event: str | None = None
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data or event is not None:
                yield SSEEvent(event, "\n".join(data), clock())
            event, data = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data or event is not None:
        yield SSEEvent(event, "\n".join(data), clock())

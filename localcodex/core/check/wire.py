"""The Codex wire format: requests shaped like the ones Codex sends, and a Responses stream read the way Codex
reads it: the one builder of a Codex-shaped request (check's probes and pace use it). bench sends no Codex
request: it times plain generation with prompts of a measured size (`core/bench/prompt.py`)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localcodex.adapters.openai_compat import EventStream

# -- Codex-shaped requests --------------------------------------------------------------------------------------

DEVELOPER = (
    "You are Codex, a coding agent running in a terminal on the user's computer. You work through the tools "
    "you are given: to learn anything about a file you must call a tool; never invent file contents."
)
ENVIRONMENT = "<environment_context>\n  <cwd>/home/user/project</cwd>\n  <shell>bash</shell>\n</environment_context>"

READ_FILE_TOOL = {
    "type": "function",
    "name": "read_file",
    "description": "Read a text file from the workspace and return its contents.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "Path of the file, relative to the workspace."}},
        "required": ["path"],
        "additionalProperties": False,
    },
}
EXEC_TOOL = {
    "type": "function",
    "name": "exec_command",
    "description": "Run a shell command and return its output.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string", "description": "The command to run."}},
        "required": ["cmd"],
        "additionalProperties": False,
    },
}
TOOL_NAMES = {"read_file", "exec_command"}
FILE_CONTENT = "The release is planned for Thursday."


def message(role: str, text: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def codex_body(model: str, prompt: str, *, developer: str = DEVELOPER, extra: Iterable[dict[str, Any]] = (),
               tools: Iterable[dict[str, Any]] = (READ_FILE_TOOL, EXEC_TOOL)) -> dict[str, Any]:
    """A `/responses` body with the keys Codex 0.169 sends (codex-config.md Part B)."""
    return {
        "model": model,
        "input": [message("developer", developer), message("user", ENVIRONMENT), message("user", prompt), *extra],
        "tools": list(tools),
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": str(uuid.uuid4()),
    }


# -- reading a Responses stream the way Codex does --------------------------------------------------------------


@dataclass
class StreamReading:
    events: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    completed: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)  # Codex would fail
    oddities: list[str] = field(default_factory=list)  # Codex copes, but it is not right
    first_event_s: float | None = None
    first_text_s: float | None = None
    total_s: float = 0.0


def read_responses_stream(stream: EventStream) -> StreamReading:
    """Consume a `/responses` SSE stream and judge it by Codex's rules."""
    out = StreamReading()
    if stream.content_type != "text/event-stream":
        out.oddities.append(f"content-type is {stream.content_type or 'missing'}, not text/event-stream")
    added: set[int] = set()
    for event in stream:
        if not _read_event(out, event, added, stream.sent_at):
            break
    out.total_s = time.perf_counter() - stream.sent_at
    _judge_stream(out)
    return out


def _read_event(out: StreamReading, event: Any, added: set[int], sent_at: float) -> bool:
    """Take one event; False once the stream is over for Codex (completed or failed)."""
    if out.first_event_s is None:
        out.first_event_s = event.received_at - sent_at
    try:
        data = event.json()
    except ValueError:
        out.problems.append(f"Failed to parse SSE event: {event.data[:80]!r}")
        return False
    if not isinstance(data, dict):
        out.problems.append(f"an event's data is not a JSON object: {event.data[:80]!r}")
        return False
    kind = data.get("type") or event.event or "?"
    if event.event and data.get("type") and event.event != data.get("type"):
        out.oddities.append(f"event name {event.event!r} differs from its type {data.get('type')!r}")
    out.events.append(kind)
    return _apply_event(out, kind, data, added, event.received_at - sent_at)


def _apply_event(out: StreamReading, kind: str, data: dict[str, Any], added: set[int], at: float) -> bool:
    index = data.get("output_index")
    if kind == "response.created" and len(out.events) > 1:
        out.problems.append("response.created is not the first event")
    elif kind == "response.output_item.added" and isinstance(index, int):
        added.add(index)
    elif kind == "response.output_text.delta":
        out.text += str(data.get("delta", ""))
        out.first_text_s = at if out.first_text_s is None else out.first_text_s
    elif kind == "response.output_item.done":
        if isinstance(index, int) and added and index not in added:
            out.problems.append(f"response.output_item.done for output {index} came before its .added")
        if isinstance(data.get("item"), dict):
            out.items.append(data["item"])
    elif kind == "response.failed":
        error = (data.get("response") or {}).get("error") or {}
        out.problems.append(f"the server sent response.failed: {error.get('message') or json.dumps(error)}")
        return False
    elif kind == "response.completed":
        out.completed = data.get("response") if isinstance(data.get("response"), dict) else {}
        return False
    return True


def _judge_stream(out: StreamReading) -> None:
    if out.completed is None and not out.problems:
        out.problems.append("the stream ended without response.completed (or response.failed): the server failed "
                            "in the middle of the answer (Ollama does not forward the error once a /v1 stream has "
                            "started)")
    elif out.completed is not None and not out.completed.get("id"):
        out.problems.append("response.completed carries no response id")
    if out.completed is not None and not out.items:
        out.problems.append("no response.output_item.done event: Codex would show nothing")
    if out.events and out.events[0] != "response.created":
        out.oddities.append(f"the stream starts with {out.events[0]}, not response.created")


def items_summary(items: list[dict[str, Any]]) -> list[str]:
    return [str(i.get("type")) for i in items]


def message_text(items: Iterable[dict[str, Any]]) -> str:
    parts: list[str] = []
    for item in items:
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
    return "".join(parts)

"""What the fake model answers.

``emu.responder`` may be set to a callable ``(ResponderRequest) -> Reply`` (a plain string
is taken as ``Reply(text=...)``). Without one, :func:`default_reply` decides:

1. ``Reply with exactly: X`` anywhere in the last user message (else in any message)
   -> the answer is ``X`` (rest of that line);
2. tools were sent, the model can call tools, the conversation has no tool result after
   the last user message, and that message names a tool (or says "call ..." or
   "use the X tool") -> a call of that tool (the first tool for a bare "call") whose
   required arguments get plausible values; a ``tool_style="prose"`` model writes the
   same call as JSON text instead;
3. after a tool result -> ``DONE_TEXT``; otherwise -> ``DEFAULT_TEXT`` (12 tokens); both as
   ``{"answer": ...}`` when the request asks for JSON output.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TEXT = "Hello! This is the Ollama emulator speaking."
DONE_TEXT = "The tool ran; all done."
THINKING_TEXT = "Thinking about the request."
_EXACT = re.compile(r"Reply with exactly:[ \t]*(.*)")
_USE_TOOL = re.compile(r"use the [`'\"]?([\w.\-]+)[`'\"]? tool", re.IGNORECASE)
_CALL = re.compile(r"\bcall\b", re.IGNORECASE)


@dataclass
class Reply:
    """A scripted answer: text and/or tool calls ``[(name, arguments)]``.

    ``thinking=None`` keeps the default (a short thought when thinking is on).
    """

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    thinking: str | None = None


@dataclass
class ResponderRequest:
    """A generation request, normalised to native chat form."""

    model: str
    endpoint: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    capabilities: list[str]
    body: dict[str, Any]
    input_items: list[Any] | None = None

    @property
    def tool_names(self) -> list[str]:
        return [t.get("function", {}).get("name", "") for t in self.tools]

    @property
    def function_outputs(self) -> int:
        """How many tool results (``function_call_output`` items) the request carries."""
        return sum(1 for m in self.messages if m.get("role") == "tool")

    @property
    def wants_json(self) -> bool:
        """``format`` (native), ``response_format`` (chat completions) or ``text.format`` (responses)."""
        body = self.body
        kinds = {(body.get("response_format") or {}).get("type"),
                 ((body.get("text") or {}).get("format") or {}).get("type")}
        return bool(body.get("format")) or bool(kinds & {"json_object", "json_schema"})

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""


def _exact_text(request: ResponderRequest) -> str | None:
    texts = [request.last_user_text] + [str(m.get("content") or "") for m in reversed(request.messages)]
    for text in texts:
        match = _EXACT.search(text)
        if match:
            return match.group(1).strip()
    return None


def _placeholder(name: str, schema: dict[str, Any]) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return [_placeholder(name, schema.get("items") or {"type": "string"})]
    if kind == "object":
        return {}
    lowered = name.lower()
    if lowered in ("cmd", "command") or "command" in lowered:
        return "ls"
    if "url" in lowered:
        return "https://example.com"
    if "query" in lowered:
        return "ollama emulator"
    return "README.md"


def tool_arguments(tool: dict[str, Any]) -> dict[str, Any]:
    """Fill the required properties of a native tool's schema with plausible values."""
    params = tool.get("function", {}).get("parameters") or {}
    props = params.get("properties") or {}
    return {name: _placeholder(name, props.get(name) or {}) for name in params.get("required") or []}


def _chosen_tool(request: ResponderRequest) -> dict[str, Any] | None:
    text = request.last_user_text
    by_name = {name: tool for name, tool in zip(request.tool_names, request.tools, strict=True) if name}
    for name in sorted(by_name, key=len, reverse=True):
        if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text):
            return by_name[name]
    match = _USE_TOOL.search(text)
    if match and match.group(1) in by_name:
        return by_name[match.group(1)]
    if _CALL.search(text) and request.tools:
        return request.tools[0]
    return None


def _answered_tool(request: ResponderRequest) -> bool:
    for message in reversed(request.messages):
        if message.get("role") == "tool":
            return True
        if message.get("role") == "user":
            return False
    return False


def default_reply(request: ResponderRequest) -> Reply:
    exact = _exact_text(request)
    if exact is not None:
        return Reply(text=exact)
    if request.tools and "tools" in request.capabilities and not _answered_tool(request):
        tool = _chosen_tool(request)
        if tool is not None:
            return Reply(tool_calls=[(tool["function"]["name"], tool_arguments(tool))])
    text = DONE_TEXT if _answered_tool(request) else DEFAULT_TEXT
    return Reply(text=json.dumps({"answer": text}) if request.wants_json else text)


def as_prose(reply: Reply) -> Reply:
    """How a ``tool_style="prose"`` model writes calls: JSON in the text, no real call."""
    if not reply.tool_calls:
        return reply
    calls = [json.dumps({"name": name, "arguments": args}) for name, args in reply.tool_calls]
    text = "\n".join(part for part in [reply.text, *calls] if part)
    return Reply(text=text, thinking=reply.thinking)


def coerce(value: Any) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply(text=value)
    raise TypeError(f"a responder must return Reply or str, not {type(value).__name__}")

"""``/v1/responses`` (Ollama v0.13.3 and later; stateless, as Codex uses it).

Request items become native chat messages the way Ollama converts them: ``instructions``
-> system message, ``message`` items keep their role (``developer`` too), ``function_call``
-> an assistant tool call, ``function_call_output`` -> a ``tool`` message, ``reasoning`` ->
thinking on the next assistant message. Tools: ``function`` as is, ``namespace`` members
as ``<namespace>.<name>``, ``web_search`` as a ``web_search(query)`` function.
"""

from __future__ import annotations

import json
import random
import time
from contextlib import closing
from typing import Any

from . import engine
from .engine import Event, Generation
from .generation import find_model, parse_arguments
from .httpbase import SSE, ApiError, Exchange, StreamWriter
from .openai_layer import think_from_effort

WEB_SEARCH_TOOL = {"type": "function", "function": {
    "name": "web_search", "description": "Search the web for current information.",
    "parameters": {"type": "object", "required": ["query"],
                   "properties": {"query": {"type": "string", "description": "The search query."}}}}}


# ---------------------------------------------------------------- request conversion


ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")
CONTENT_TYPES = ("input_text", "output_text", "input_image", "input_file")


def _text(content: Any, where: str = "input") -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            parts.append(part.get("text", ""))
        elif kind == "input_file":
            raise ApiError(400, "file inputs are not currently supported")
        elif kind not in CONTENT_TYPES:
            # Unknown content types are refused (openai/responses.go ~289-293).
            raise ApiError(400, f"{where}: unknown content type: {json.dumps(kind)}")
    return "".join(parts)


def _add_call(messages: list[dict[str, Any]], call: dict[str, Any], thinking: str) -> None:
    if messages and messages[-1]["role"] == "assistant":
        target = messages[-1]
    else:
        target = {"role": "assistant", "content": ""}
        messages.append(target)
    target.setdefault("tool_calls", []).append(call)
    if thinking:
        target["thinking"] = thinking


def input_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": str(body["instructions"])})
    items = body.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    thinking = ""
    for index, item in enumerate(items or []):
        kind = item.get("type", "message")
        if kind not in ITEM_TYPES:
            # openai/responses.go ~289-293
            raise ApiError(400, f"input[{index}]: unknown input item type: {json.dumps(kind)}")
        if kind == "reasoning":
            thinking = str(item.get("encrypted_content") or "")
        elif kind == "message":
            message = {"role": item.get("role", "user"), "content": _text(item.get("content"), f"input[{index}]")}
            if message["role"] == "assistant" and thinking:
                message["thinking"], thinking = thinking, ""
            messages.append(message)
        elif kind == "function_call":
            call = {"id": item.get("call_id", ""), "function": {
                "name": item.get("name", ""), "arguments": parse_arguments(item.get("arguments") or "")}}
            _add_call(messages, call, thinking)
            thinking = ""
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "content": _text(output) if isinstance(output, list)
                             else str(output or ""), "tool_call_id": item.get("call_id", "")})
    if thinking:
        messages.append({"role": "assistant", "content": "", "thinking": thinking})
    return messages


def _function(tool: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    if tool.get("type") == "namespace":
        inner = f"{tool.get('name')}." if tool.get("name") else ""
        return [f for member in tool.get("tools") or [] for f in _function(member, prefix or inner)]
    name = tool.get("name", "")
    if prefix and not name.startswith(prefix):
        name = prefix + name
    return [{"type": tool.get("type", "function"), "function": {
        "name": name, "description": tool.get("description") or "",
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}}]


def native_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    has_search = any(t.get("type") == "web_search" for t in tools)
    result = []
    for tool in tools:
        if tool.get("type") == "web_search":
            result.append(WEB_SEARCH_TOOL)
            continue
        result += [f for f in _function(tool) if not (has_search and f["function"]["name"] == "web_search")]
    return result


# ---------------------------------------------------------------- response objects


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": [_output_text(text)] if status == "completed" else []}


def _usage(event: Event) -> dict[str, Any]:
    prompt, output = event.metrics.get("prompt_eval_count", 0), event.metrics.get("eval_count", 0)
    return {"input_tokens": prompt, "output_tokens": output, "total_tokens": prompt + output,
            "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}


def response_object(body: dict[str, Any], response_id: str, status: str, output: list[Any],
                    usage: dict[str, Any] | None) -> dict[str, Any]:
    reasoning = body.get("reasoning") or {}
    text = body.get("text") or {}
    return {
        "id": response_id, "object": "response", "created_at": int(time.time()),
        "completed_at": int(time.time()) if status == "completed" else None, "status": status,
        "incomplete_details": None, "model": body.get("model"), "previous_response_id": None,
        "instructions": body.get("instructions") or None, "output": output, "error": None,
        "tools": body.get("tools") or [], "tool_choice": "auto",
        "truncation": body.get("truncation") or "disabled", "parallel_tool_calls": True,
        "text": {"format": text.get("format") or {"type": "text"}},
        "top_p": body.get("top_p", 1.0), "presence_penalty": 0, "frequency_penalty": 0, "top_logprobs": 0,
        "temperature": body.get("temperature", 1.0),
        "reasoning": ({"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}
                      if reasoning.get("effort") or reasoning.get("summary") else None),
        "usage": usage, "max_output_tokens": body.get("max_output_tokens"), "max_tool_calls": None,
        "store": False, "background": body.get("background"), "service_tier": "default", "metadata": {},
        "safety_identifier": None, "prompt_cache_key": None,
    }


def _function_item(item_id: str, call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    arguments = json.dumps(call["function"]["arguments"], separators=(",", ":"))
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call["id"],
            "name": call["function"]["name"], "arguments": arguments if status == "completed" else ""}


# ---------------------------------------------------------------- handler


def handle(ex: Exchange) -> None:
    body = ex.json_body()
    model_text = str(body.get("model") or "")
    if not model_text:
        raise ApiError(400, "model is required")
    think = think_from_effort((body.get("reasoning") or {}).get("effort"))
    messages = input_messages(body)
    tools = native_tools(body.get("tools") or [])
    options: dict[str, Any] = {"temperature": body.get("temperature", 1.0)}
    if body.get("top_p") is not None:
        options["top_p"] = body["top_p"]
    if body.get("max_output_tokens") is not None:
        options["num_predict"] = body["max_output_tokens"]
    item = find_model(ex, model_text, chat=True)
    thinking = engine.check_think(think, item, model_text)
    engine.check_capabilities(item, model_text, tools, "chat")
    gen = Generation("/v1/responses", model_text, item, messages, tools, options,
                     ex.emu.keep_alive_default, body, ex.started, think=think,
                     input_items=body.get("input") if isinstance(body.get("input"), list) else None,
                     thinking=thinking)
    response_id = f"resp_{random.randrange(999999)}"
    if body.get("stream") is True:
        ResponsesStream(ex, gen, response_id).run()
    else:
        _respond(ex, gen, response_id)


def _respond(ex: Exchange, gen: Generation, response_id: str) -> None:
    answer = engine.collect(ex.emu, gen)
    output: list[dict[str, Any]] = []
    if answer.thinking:
        output.append({"id": f"rs_{response_id}", "type": "reasoning", "encrypted_content": answer.thinking,
                       "summary": [{"type": "summary_text", "text": answer.thinking}]})
    if answer.tool_calls:
        output += [_function_item(f"fc_{response_id}_{i}", call) for i, call in enumerate(answer.tool_calls)]
    else:
        output.append(_message_item(f"msg_{random.randrange(999999)}", answer.text))
    response = response_object(gen.body, response_id, "completed", output, _usage(answer.final))
    ex.send_json(200, response, gin=False)


class ResponsesStream:
    """The SSE event sequence of Ollama's ResponsesStreamConverter."""

    def __init__(self, ex: Exchange, gen: Generation, response_id: str):
        self.ex, self.gen, self.response_id = ex, gen, response_id
        self.item_id = f"msg_{random.randrange(999999)}"
        self.out: StreamWriter = ex.open_stream(SSE, "responses", (("Cache-Control", "no-cache"),
                                                                  ("Connection", "keep-alive")))
        self.sequence = 0
        self.index = 0
        self.text: list[str] | None = None
        self.thought: list[str] | None = None
        self.reasoning_id = ""
        self.items: list[dict[str, Any]] = []
        self.calls_sent = False

    def emit(self, kind: str, **data: Any) -> None:
        self.out.send_sse({"type": kind, "sequence_number": self.sequence, **data}, event=kind)
        self.sequence += 1

    def run(self) -> None:
        with closing(engine.run(self.ex.emu, self.gen)) as events:
            for position, event in enumerate(events):
                if position == 0:
                    for kind in ("response.created", "response.in_progress"):
                        self.emit(kind, response=self._response("in_progress", [], None))
                getattr(self, f"_on_{event.kind}")(event)
        self.out.end()

    def _response(self, status: str, output: list[Any], usage: dict[str, Any] | None) -> dict[str, Any]:
        response = response_object(self.gen.body, self.response_id, status, output, usage)
        keys = ("type", "name", "description", "strict", "parameters")
        tools = self.gen.body.get("tools") or []
        response["tools"] = [{key: tool.get(key) for key in keys} for tool in tools]
        return response

    def _on_thinking(self, event: Event) -> None:
        if self.thought is None:
            self.thought, self.reasoning_id = [], f"rs_{random.randrange(999999)}"
            self.emit("response.output_item.added", output_index=self.index,
                      item={"id": self.reasoning_id, "type": "reasoning", "summary": []})
        self.thought.append(event.text)
        self.emit("response.reasoning_summary_text.delta", item_id=self.reasoning_id,
                  output_index=self.index, summary_index=0, delta=event.text)

    def _finish_reasoning(self) -> None:
        if self.thought is None:
            return
        text = "".join(self.thought)
        item = {"id": self.reasoning_id, "type": "reasoning",
                "summary": [{"type": "summary_text", "text": text}], "encrypted_content": text}
        self.items.append(item)
        self.emit("response.reasoning_summary_text.done", item_id=self.reasoning_id,
                  output_index=self.index, summary_index=0, text=text)
        self.emit("response.output_item.done", output_index=self.index, item=item)
        self.thought = None
        self.index += 1

    def _on_content(self, event: Event) -> None:
        if self.calls_sent:
            return
        self._finish_reasoning()
        if self.text is None:
            self.text = []
            self.emit("response.output_item.added", output_index=self.index,
                      item=_message_item(self.item_id, "", "in_progress"))
            self.emit("response.content_part.added", item_id=self.item_id, output_index=self.index,
                      content_index=0, part=_output_text(""))
        self.text.append(event.text)
        self.emit("response.output_text.delta", item_id=self.item_id, output_index=self.index,
                  content_index=0, delta=event.text, logprobs=[])

    def _on_tool_calls(self, event: Event) -> None:
        self._finish_reasoning()
        self.calls_sent = True
        for call in event.tool_calls:
            item_id = f"fc_{random.randrange(999999)}_{call['function'].get('index', 0)}"
            done = _function_item(item_id, call)
            self.items.append(done)
            self.emit("response.output_item.added", output_index=self.index,
                      item=_function_item(item_id, call, "in_progress"))
            self.emit("response.function_call_arguments.delta", item_id=item_id, output_index=self.index,
                      delta=done["arguments"])
            self.emit("response.function_call_arguments.done", item_id=item_id, output_index=self.index,
                      arguments=done["arguments"])
            self.emit("response.output_item.done", output_index=self.index, item=done)
            self.index += 1

    def _on_done(self, event: Event) -> None:
        self._finish_reasoning()
        output = list(self.items)
        if self.text is not None:
            text = "".join(self.text)
            item = _message_item(self.item_id, text)
            output.append(item)
            if not self.calls_sent:  # like Ollama: text before a tool call is never closed
                self.emit("response.output_text.done", item_id=self.item_id, output_index=self.index,
                          content_index=0, text=text, logprobs=[])
                self.emit("response.content_part.done", item_id=self.item_id, output_index=self.index,
                          content_index=0, part=_output_text(text))
                self.emit("response.output_item.done", output_index=self.index, item=item)
        self.emit("response.completed", response=self._response("completed", output, _usage(event)))

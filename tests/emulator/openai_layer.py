"""``/v1/models``, ``/v1/chat/completions`` and ``/v1/completions`` (``/v1/responses`` lives in
:mod:`emulator.responses`).

Errors raised here become ``{"error": {"message", "type", "param", "code"}}`` with ``type``
``invalid_request_error`` (400), ``not_found_error`` (404) or ``api_error``.
"""

from __future__ import annotations

import json
import random
import time
from contextlib import closing
from typing import Any
from urllib.parse import unquote

from . import engine, native
from .engine import Event, Generation
from .generation import find_model, parse_arguments
from .httpbase import SSE, ApiError, Exchange, StreamWriter
from .names import parse_name

_EFFORT = {"none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high",
           "max": "max", "xhigh": "max", "ultra": "max"}


def think_from_effort(effort: Any) -> Any:
    if not effort:
        return None
    if effort not in _EFFORT:
        raise ApiError(400, f'invalid reasoning value: "{effort}" (must be "minimal", "low", "medium", '
                            '"high", "xhigh", "ultra", "max", or "none")')
    return _EFFORT[effort]


def usage(event: Event) -> dict[str, int]:
    prompt, completion = event.metrics.get("prompt_eval_count", 0), event.metrics.get("eval_count", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def openai_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": call["id"], "index": call["function"].get("index", 0), "type": "function",
             "function": {"name": call["function"]["name"],
                          "arguments": json.dumps(call["function"]["arguments"], separators=(",", ":"))}}
            for call in calls]


# ---------------------------------------------------------------- models


def _model_object(model_id: str, mtime_ns: int) -> dict[str, Any]:
    name = parse_name(model_id)
    return {"id": model_id, "object": "model", "created": mtime_ns // 1_000_000_000,
            "owned_by": name.namespace if name else ""}


def list_models(ex: Exchange) -> None:
    data = [_model_object(item.name.display, item.mtime_ns) for item in ex.emu.store.list()]
    ex.send_json(200, {"object": "list", "data": data or None}, gin=False)


def retrieve_model(ex: Exchange, model: str) -> None:
    model = unquote(model)
    item = native.find_or_404(ex, model)
    ex.send_json(200, _model_object(model, item.mtime_ns), gin=False)


# ---------------------------------------------------------------- chat completions


def _content_text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    text = []
    for part in content:
        if part.get("type") == "text":
            text.append(part.get("text", ""))
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "") if isinstance(part.get("image_url"), dict) \
                else str(part.get("image_url"))
            if url.startswith(("http://", "https://")):
                raise ApiError(400, "image URLs are not currently supported, please use base64 encoded "
                                    "data instead")
    return "".join(text)


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI chat messages -> native messages."""
    result = []
    for message in messages:
        native_message: dict[str, Any] = {"role": message.get("role", "user"),
                                          "content": _content_text(message.get("content"))}
        if message.get("reasoning"):
            native_message["thinking"] = message["reasoning"]
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            arguments = function.get("arguments") or "{}"
            calls.append({"id": call.get("id", ""), "function": {
                "name": function.get("name", ""),
                "arguments": parse_arguments(arguments) if isinstance(arguments, str) else arguments}})
        if calls:
            native_message["tool_calls"] = calls
        if message.get("tool_call_id"):
            native_message["tool_call_id"] = message["tool_call_id"]
        result.append(native_message)
    return result


def _options(body: dict[str, Any], max_key: str) -> dict[str, Any]:
    options: dict[str, Any] = {"temperature": body.get("temperature", 1.0), "top_p": body.get("top_p", 1.0)}
    for key, target in ((max_key, "num_predict"), ("seed", "seed"), ("stop", "stop"),
                        ("frequency_penalty", "frequency_penalty"), ("presence_penalty", "presence_penalty")):
        if body.get(key) is not None:
            options[target] = body[key]
    return options


def chat_completions(ex: Exchange) -> None:
    body = ex.json_body()
    if not body.get("messages"):
        raise ApiError(400, "[] is too short - 'messages'")
    model_text = str(body.get("model") or "")
    if not model_text:
        raise ApiError(400, "model is required")
    think = think_from_effort(body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort"))
    messages = chat_messages(body["messages"])
    tools = body.get("tools") or []
    item = find_model(ex, model_text, chat=True)
    thinking = engine.check_think(think, item, model_text)
    engine.check_capabilities(item, model_text, tools, "chat")
    gen = Generation("/v1/chat/completions", model_text, item, messages, tools,
                     _options(body, "max_tokens"), ex.emu.keep_alive_default, body, ex.started,
                     think=think, thinking=thinking)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if body.get("stream") is True:
        ChatStream(ex, gen, include_usage).run()
    else:
        _chat_completion(ex, gen)


def _finish_reason(reason: str, tool_calls: bool) -> str:
    return "tool_calls" if reason == "stop" and tool_calls else reason


def _chat_completion(ex: Exchange, gen: Generation) -> None:
    answer = engine.collect(ex.emu, gen)
    message: dict[str, Any] = {"role": "assistant", "content": answer.text}
    if answer.thinking:
        message["reasoning"] = answer.thinking
    if answer.tool_calls:
        message["tool_calls"] = openai_tool_calls(answer.tool_calls)
    ex.send_json(200, {
        "id": f"chatcmpl-{random.randrange(999)}", "object": "chat.completion", "created": int(time.time()),
        "model": gen.model_text, "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "message": message,
                     "finish_reason": _finish_reason(answer.final.done_reason, bool(answer.tool_calls))}],
        "usage": usage(answer.final)}, gin=False)


class ChatStream:
    """SSE chunks: the v0.32.6+ wire shape, or the older one for older versions."""

    def __init__(self, ex: Exchange, gen: Generation, include_usage: bool):
        self.ex, self.gen, self.include_usage = ex, gen, include_usage
        self.v2 = ex.emu.features.openai_stream_v2
        self.id = f"chatcmpl-{random.randrange(999)}"
        self.created = int(time.time())
        self.first = True
        self.tool_call_sent = False
        self.out: StreamWriter = ex.open_stream(SSE, "sse")

    def _chunk(self, delta: dict[str, Any], finish: str | None = None,
               choices: bool = True) -> dict[str, Any]:
        created = self.created if self.v2 else int(time.time())
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": created,
                 "model": self.gen.model_text, "system_fingerprint": "fp_ollama",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []}
        return chunk

    def _delta(self, event: Event) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if self.first or not self.v2:
            delta["role"] = "assistant"
        delta["content"] = event.text if event.kind == "content" else ""
        if event.kind == "thinking":
            delta["reasoning"] = event.text
        if event.tool_calls:
            delta["tool_calls"] = openai_tool_calls(event.tool_calls)
            self.tool_call_sent = True
        return delta

    def run(self) -> None:
        with closing(engine.run(self.ex.emu, self.gen)) as events:
            for event in events:
                if event.kind != "done":
                    self.out.send_sse(self._chunk(self._delta(event)))
                    self.first = False
                    continue
                self._finish(event)
        self.out.send_sse(b"[DONE]")
        self.out.end()

    def _finish(self, event: Event) -> None:
        reason = _finish_reason(event.done_reason, self.tool_call_sent)
        if self.v2:
            if self.first:
                self.out.send_sse(self._chunk(self._delta(event)))
            self.out.send_sse(self._chunk({}, reason))
        else:
            self.out.send_sse(self._chunk({"role": "assistant", "content": ""}, reason))
        if self.include_usage:
            self.out.send_sse({**self._chunk({}, choices=False), "usage": usage(event)})


# ---------------------------------------------------------------- completions


def completions(ex: Exchange) -> None:
    body = ex.json_body()
    model_text = str(body.get("model") or "")
    item = find_model(ex, model_text, chat=False)
    engine.check_capabilities(item, model_text, [], "generate")
    gen = Generation("/v1/completions", model_text, item,
                     [{"role": "user", "content": str(body.get("prompt") or "")}], [],
                     _options(body, "max_tokens"), ex.emu.keep_alive_default, body, ex.started,
                     generate=True)
    ident, created = f"cmpl-{random.randrange(999)}", int(time.time())
    head = {"id": ident, "object": "text_completion", "created": created, "model": model_text,
            "system_fingerprint": "fp_ollama"}
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    text, final = [], Event("done")
    stream = ex.open_stream(SSE, "sse") if body.get("stream") is True else None
    with closing(engine.run(ex.emu, gen)) as events:
        for event in events:
            final = event
            piece = event.text if event.kind == "content" else ""
            text.append(piece)
            if stream is not None:
                reason = event.done_reason if event.kind == "done" else None
                chunk = {**head, "choices": [{"text": piece, "index": 0, "finish_reason": reason}]}
                if include_usage:
                    chunk["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
                stream.send_sse(chunk)
    if stream is None:
        ex.send_json(200, {**head, "choices": [{"text": "".join(text), "index": 0,
                                                "finish_reason": final.done_reason}],
                           "usage": usage(final)}, gin=False)
        return
    if include_usage:
        stream.send_sse({**head, "choices": [], "usage": usage(final)})
    stream.send_sse(b"[DONE]")
    stream.end()

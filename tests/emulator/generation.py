"""``/api/generate`` and ``/api/chat``, plus the request checks the ``/v1`` layer shares."""

from __future__ import annotations

import json
from contextlib import closing
from typing import Any

from . import engine
from .clock import now_utc
from .engine import Event, Generation
from .httpbase import NDJSON, ApiError, Exchange
from .names import parse_name
from .runtime import parse_keep_alive
from .store import Installed


def check_top_logprobs(body: dict[str, Any]) -> None:
    value = body.get("top_logprobs") or 0
    if isinstance(value, int) and not 0 <= value <= 20:
        raise ApiError(400, "top_logprobs must be between 0 and 20")


def find_model(ex: Exchange, text: str, chat: bool) -> Installed:
    """The model a generation names; 404 ``model 'x' not found`` (the name as typed).

    An empty or invalid name is 400 ``model is required`` for chat, a 404 for generate.
    """
    name = parse_name(text)
    if name is None:
        if chat:
            raise ApiError(400, "model is required")
        raise ApiError(404, f"model '{text}' not found")
    item = ex.emu.store.find(name)
    if item is None:
        raise ApiError(404, f"model '{text}' not found")
    return item


def normalise_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Native messages with string content and dict tool-call arguments."""
    result = []
    for message in messages or []:
        if not isinstance(message, dict):
            raise ApiError(400, "json: cannot unmarshal into Go struct field ChatRequest.messages")
        item = dict(message)
        item["content"] = str(item.get("content") or "")
        calls = []
        for call in item.get("tool_calls") or []:
            function = dict(call.get("function") or {})
            if isinstance(function.get("arguments"), str):
                function["arguments"] = parse_arguments(function["arguments"])
            calls.append({**call, "function": function})
        if calls:
            item["tool_calls"] = calls
        result.append(item)
    return result


def parse_arguments(text: str) -> dict[str, Any]:
    try:
        return json.loads(text or "{}")
    except ValueError as error:
        raise ApiError(400, f"failed to parse function call arguments: {error}") from None


def with_model_preamble(item: Installed, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prepend the Modelfile MESSAGEs and SYSTEM, as the chat handler does."""
    combined = [*item.messages, *messages]
    if item.system and (not messages or messages[0].get("role") != "system"):
        combined.insert(0, {"role": "system", "content": item.system})
    return combined


def metrics_fields(event: Event) -> dict[str, Any]:
    return {"done_reason": event.done_reason, **event.metrics}


def _context_ids(count: int) -> list[int]:
    return [(index * 7919 + 13) % 151_936 for index in range(count)]


# ---------------------------------------------------------------- chat


def chat(ex: Exchange) -> None:
    body = ex.json_body()
    check_top_logprobs(body)
    model_text = str(body.get("model") or "")
    item = find_model(ex, model_text, chat=True)
    keep_alive = parse_keep_alive(body.get("keep_alive"), ex.emu.keep_alive_default)
    messages = normalise_messages(body.get("messages") or [])
    shortcut = {"model": model_text, "created_at": now_utc(), "message": {"role": "assistant", "content": ""},
                "done": True}
    if not messages and keep_alive == 0:
        ex.emu.runtime.unload(item)
        ex.send_json(200, {**shortcut, "done_reason": "unload"})
        return
    tools = body.get("tools") or []
    thinking = engine.check_think(body.get("think"), item, model_text)
    engine.check_capabilities(item, model_text, tools, "chat")
    gen = Generation("/api/chat", model_text, item, with_model_preamble(item, messages), tools,
                     dict(body.get("options") or {}), keep_alive, body, ex.started,
                     think=body.get("think"), thinking=thinking)
    if not messages:
        engine.load_only(ex.emu, gen)
        ex.send_json(200, {**shortcut, "done_reason": "load"})
        return
    write_native(ex, gen, body.get("stream") is not False)


# ---------------------------------------------------------------- generate


def generate(ex: Exchange) -> None:
    body = ex.json_body()
    check_top_logprobs(body)
    model_text = str(body.get("model") or "")
    item = find_model(ex, model_text, chat=False)
    if body.get("raw") and (body.get("template") or body.get("system") or body.get("context")):
        raise ApiError(400, "raw mode does not support template, system, or context")
    keep_alive = parse_keep_alive(body.get("keep_alive"), ex.emu.keep_alive_default)
    prompt = str(body.get("prompt") or "")
    shortcut = {"model": model_text, "created_at": now_utc(), "response": "", "done": True}
    if not prompt and keep_alive == 0:
        ex.emu.runtime.unload(item)
        ex.send_json(200, {**shortcut, "done_reason": "unload"})
        return
    thinking = engine.check_think(body.get("think"), item, model_text)
    engine.check_capabilities(item, model_text, [], "generate")
    system = str(body.get("system") or item.system or "")
    messages = ([{"role": "system", "content": system}] if system else []) + \
        [{"role": "user", "content": prompt}]
    gen = Generation("/api/generate", model_text, item, messages, [], dict(body.get("options") or {}),
                     keep_alive, body, ex.started, think=body.get("think"), generate=True,
                     context_tokens=len(body.get("context") or []), thinking=thinking)
    if not prompt:
        engine.load_only(ex.emu, gen)
        ex.send_json(200, {**shortcut, "done_reason": "load"})
        return
    write_native(ex, gen, body.get("stream") is not False)


# ---------------------------------------------------------------- native output


def _chunk(gen: Generation, event: Event) -> dict[str, Any]:
    head = {"model": gen.model_text, "created_at": now_utc()}
    if gen.generate:
        body: dict[str, Any] = {"response": event.text if event.kind == "content" else ""}
        if event.kind == "thinking":
            body["thinking"] = event.text
    else:
        content = event.text if event.kind == "content" else ""
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if event.kind == "thinking":
            message["thinking"] = event.text
        if event.tool_calls:
            message["tool_calls"] = event.tool_calls
        body = {"message": message}
    return {**head, **body, "done": event.kind == "done"}


def _final(gen: Generation, event: Event, chunk: dict[str, Any]) -> dict[str, Any]:
    chunk.update(metrics_fields(event))
    if gen.generate and not gen.body.get("raw"):
        chunk["context"] = _context_ids(event.prompt_tokens + event.metrics.get("eval_count", 0))
    return chunk


def write_native(ex: Exchange, gen: Generation, stream: bool) -> None:
    if stream:
        out = ex.open_stream(NDJSON, "ndjson")
        with closing(engine.run(ex.emu, gen)) as events:
            for event in events:
                chunk = _chunk(gen, event)
                out.send_json_line(_final(gen, event, chunk) if event.kind == "done" else chunk)
        out.end()
        return
    answer = engine.collect(ex.emu, gen)
    final = _final(gen, answer.final, _chunk(gen, answer.final))
    target = final if gen.generate else final["message"]
    target["response" if gen.generate else "content"] = answer.text
    if answer.thinking:
        target["thinking"] = answer.thinking
    if answer.tool_calls:
        target["tool_calls"] = answer.tool_calls
    ex.send_json(200, final)

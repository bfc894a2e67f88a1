"""Timed generation: one request's load, prompt processing and decoding.

Everything sleeps on an absolute schedule measured from the request's arrival ``t0``:

* load ends at ``t0 + load_time`` (only when the runner must (re)load),
* prompt processing ends ``prompt_eval_count / prompt_rate`` later (= first token),
* output token ``i`` (0-based) is emitted at ``prompt_end + i / decode_rate``,
* the final ``done`` event at ``prompt_end + eval_count / decode_rate``.

Reported counters: ``prompt_eval_duration`` and ``eval_duration`` are exactly the
simulated times, ``load_duration`` and ``total_duration`` are measured from ``t0``.
"""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import tokens
from .httpbase import ApiError
from .models import renders_developer
from .responder import THINKING_TEXT, Reply, ResponderRequest, as_prose, coerce, default_reply
from .store import Installed

if TYPE_CHECKING:
    from .server import Emulator

THINK_LEVELS = ("high", "medium", "low", "max")
FILLER = tokens.pieces(" and so the emulator keeps talking until the budget is spent.")


@dataclass
class Generation:
    """A normalised generation request (native chat form)."""

    endpoint: str
    model_text: str
    installed: Installed
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    options: dict[str, Any]
    keep_alive: float
    body: dict[str, Any]
    started: float
    think: Any = None
    input_items: list[Any] | None = None
    generate: bool = False
    context_tokens: int = 0
    thinking: bool = False


@dataclass
class Event:
    kind: str  # "thinking" | "content" | "tool_calls" | "done"
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    done_reason: str = ""
    metrics: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0


def call_id() -> str:
    return "call_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))


def check_think(think: Any, installed: Installed, model_text: str) -> bool:
    """Validate ``think`` and return whether the model will think (Ollama's rules)."""
    if think is not None and not isinstance(think, bool) and think not in THINK_LEVELS:
        raise ApiError(400, f'invalid think value: "{think}" (must be "high", "medium", "low", '
                            '"max", true, or false)')
    if "thinking" in installed.capabilities:
        return think is not False
    if think is not None and think is not False:
        raise ApiError(400, f'"{model_text}" does not support thinking')
    return False


def check_capabilities(installed: Installed, model_text: str, tools: list[Any], verb: str) -> None:
    caps = installed.capabilities
    if "completion" not in caps:
        raise ApiError(400, f'"{model_text}" does not support {verb}')
    if tools and "tools" not in caps:
        raise ApiError(400, f"{installed.name.full} does not support tools")


def _rates(emu: Emulator, installed: Installed) -> tuple[float, float, float]:
    extras = installed.emulator_extras
    return (float(extras.get("load_time", emu.load_time)),
            float(extras.get("prompt_rate", emu.prompt_rate)),
            float(extras.get("decode_rate", emu.decode_rate)))


def rendered_messages(installed: Installed, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages the model's template renders: ``developer`` ones vanish on most models."""
    arch = installed.info.architecture if installed.info else str(installed.config.get("model_family", ""))
    if renders_developer(arch, installed.emulator_extras.get("renders_developer")):
        return messages
    return [m for m in messages if m.get("role") != "developer"]


def prompt_count(emu: Emulator, gen: Generation, num_ctx: int) -> int:
    """Prompt tokens the runner evaluates, or the 400 real Ollama answers on overflow."""
    extras = gen.installed.emulator_extras
    messages = rendered_messages(gen.installed, gen.messages)
    if gen.generate:
        count = gen.context_tokens + tokens.prompt_tokens(messages)
    elif extras.get("native_template"):
        count = tokens.prompt_tokens(messages, gen.tools)
    else:
        kept = tokens.drop_old_messages(messages, gen.tools, num_ctx)
        count = tokens.prompt_tokens(kept, gen.tools)
    llama_server = emu.features.llama_server_truncation
    if count > (num_ctx - 1 if llama_server else num_ctx):
        if extras.get("native_template"):
            # llama-server renders the prompt itself and refuses; Ollama passes its body on
            # (llm/llama_server.go ~1942-1948, server/routes.go ~3030).
            raise ApiError(400, f"request ({count} tokens) exceeds the available context size "
                                f"({num_ctx} tokens), try increasing it")
        if extras.get("context_shift") is False:
            # No context shift: no truncation either (llm/llama_server.go ~279-331).
            raise ApiError(400, "the prompt is longer than the context length currently available")
    return tokens.runner_truncate(count, num_ctx, llama_server)


def _reply(emu: Emulator, gen: Generation) -> Reply:
    request = ResponderRequest(
        model=gen.model_text, endpoint=gen.endpoint, messages=gen.messages, tools=gen.tools,
        capabilities=gen.installed.capabilities, body=gen.body, input_items=gen.input_items)
    reply = coerce(emu.responder(request)) if emu.responder else default_reply(request)
    if gen.installed.emulator_extras.get("tool_style") == "prose" or gen.generate:
        reply = as_prose(reply)
    return reply


def _plan(reply: Reply, thinking: bool, num_predict: Any) -> tuple[list[tuple[str, int, str]], str]:
    """Output tokens as ``(kind, call index, text)``; kind is thinking/content/call."""
    thought = (THINKING_TEXT if reply.thinking is None else reply.thinking) if thinking else ""
    seq = [("thinking", -1, p) for p in tokens.pieces(thought)]
    seq += [("content", -1, p) for p in tokens.pieces(reply.text)]
    for index, (name, args) in enumerate(reply.tool_calls):
        text = tokens.compact({"name": name, "arguments": args})
        seq += [("call", index, p) for p in tokens.pieces(text)]
    if not isinstance(num_predict, int) or isinstance(num_predict, bool) or num_predict < 0:
        return seq, "stop"
    if len(seq) > num_predict:
        seq = seq[:num_predict]
        complete = _complete_calls(seq, reply)
        seq = [(k if k != "call" or i in complete else "content", i, t) for k, i, t in seq]
    natural = len(seq)
    while len(seq) < num_predict:
        seq.append(("content", -1, FILLER[(len(seq) - natural) % len(FILLER)]))
    return seq, "length"


def _complete_calls(seq: list[tuple[str, int, str]], reply: Reply) -> set[int]:
    done = set()
    for index, (name, args) in enumerate(reply.tool_calls):
        text = "".join(t for k, i, t in seq if k == "call" and i == index)
        if text == tokens.compact({"name": name, "arguments": args}):
            done.add(index)
    return done


@contextmanager
def _runner(emu: Emulator, gen: Generation) -> Iterator[tuple[int, float]]:
    """Hold the model's runner, loading it first if needed; yields (num_ctx, load end)."""
    load_time = _rates(emu, gen.installed)[0]
    num_ctx = emu.runtime.num_ctx_for(gen.installed, gen.options)
    entry, needs_load = emu.runtime.acquire(gen.installed, num_ctx)
    try:
        if needs_load:
            emu.sleep_until(gen.started + load_time)
        entry.ready = True
        yield num_ctx, time.monotonic()
    finally:
        emu.runtime.release(entry, gen.keep_alive)


def load_only(emu: Emulator, gen: Generation) -> None:
    """The empty-prompt shortcut: load the model (it unloads at once with keep_alive 0)."""
    with _runner(emu, gen):
        pass


def run(emu: Emulator, gen: Generation) -> Iterator[Event]:
    """Yield output events at their scheduled times; the last one is ``done``."""
    _, prompt_rate, decode_rate = _rates(emu, gen.installed)
    with _runner(emu, gen) as (num_ctx, load_end):
        count = prompt_count(emu, gen, num_ctx)
        prompt_end = load_end + count / prompt_rate
        emu.sleep_until(prompt_end)
        seq, reason = _plan(_reply(emu, gen), gen.thinking, gen.options.get("num_predict"))
        buffers: dict[int, str] = {}
        for position, (kind, index, text) in enumerate(seq):
            emu.sleep_until(prompt_end + position / decode_rate)
            if kind != "call":
                yield Event(kind, text)
                continue
            buffers[index] = buffers.get(index, "") + text
            if position + 1 == len(seq) or seq[position + 1][1] != index:
                call = json.loads(buffers[index])
                native = {"id": call_id(), "function": {"index": index, "name": call["name"],
                                                        "arguments": call["arguments"]}}
                yield Event("tool_calls", tool_calls=[native])
        emu.sleep_until(prompt_end + len(seq) / decode_rate)
        metrics = {
            "total_duration": int((time.monotonic() - gen.started) * 1e9),
            "load_duration": max(1, int((load_end - gen.started) * 1e9)),
            "prompt_eval_count": count,
            "prompt_eval_duration": int(count / prompt_rate * 1e9),
            "eval_count": len(seq),
            "eval_duration": int(len(seq) / decode_rate * 1e9),
        }
        yield Event("done", done_reason=reason, metrics={k: v for k, v in metrics.items() if v},
                    prompt_tokens=count)


@dataclass
class Collected:
    """A whole answer, for non-streaming responses."""

    text: str
    thinking: str
    tool_calls: list[dict[str, Any]]
    final: Event


def collect(emu: Emulator, gen: Generation) -> Collected:
    """Run the generation to its end and gather text, thinking and tool calls."""
    parts: dict[str, list[str]] = {"content": [], "thinking": []}
    calls: list[dict[str, Any]] = []
    final = Event("done")
    with closing(run(emu, gen)) as events:
        for event in events:
            parts.get(event.kind, []).append(event.text)
            calls += event.tool_calls
            final = event
    return Collected("".join(parts["content"]), "".join(parts["thinking"]), calls, final)

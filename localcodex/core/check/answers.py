"""check's probes of what Codex sends: 5 the Responses API (plain and streamed), 6 a tool call round trip,
8 chat completions; each read the way Codex (or an OpenAI client) reads the answer."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from localcodex.core.check.state import ProbeRun
from localcodex.core.check.types import Verdict, failed, passed, warned
from localcodex.core.check.wire import (
    FILE_CONTENT,
    TOOL_NAMES,
    StreamReading,
    codex_body,
    items_summary,
    message_text,
    read_responses_stream,
)

if TYPE_CHECKING:
    from localcodex.adapters.openai_compat import EventStream

# -- probe 5: the Responses API as Codex uses it ----------------------------------------------------------------


def probe_responses(run: ProbeRun) -> Verdict:
    from localcodex.adapters.openai_compat import HTTPStatusError

    assert run.client is not None
    body = codex_body(run.model, "Say in one short sentence that you are ready. No tools are needed for this.")
    try:
        plain = run.client.responses(body, timeouts=run.budget())
    except HTTPStatusError as exc:
        run.note_rejection(exc)
        return failed(f"non-streamed POST {exc.message}{_codex_says(exc.status)}", exc.hint,
                      http_status=exc.status, error="http")
    problem = _plain_problem(plain)
    if problem:
        return failed(f"non-streamed answer: {problem}", _server_fix(run), answer=_clip(json.dumps(plain)))
    with run.client.responses(body, stream=True, timeouts=run.budget()) as stream:
        reading = read_responses_stream(stream)
    return _judge_responses(run, plain, reading)


def _codex_says(status: int) -> str:
    if status >= 500:
        return " (Codex retries for about 25 s, then shows \"We're currently experiencing high demand\")"
    if status == 404:
        return " (Codex retries 5 times, then stops with this 404)"
    return ""


def _plain_problem(plain: dict[str, Any]) -> str | None:
    output = plain.get("output")
    if not isinstance(output, list):
        return "it has no `output` list"
    if not plain.get("id"):
        return "it has no response id"
    if not output:
        return "its `output` is empty"
    if plain.get("status") not in (None, "completed"):
        return f"its status is {plain.get('status')!r}, not 'completed'"
    return None


def _server_fix(run: ProbeRun) -> str:
    if run.is_ollama:
        return "upgrade Ollama (`ollama -v`), and check the server log for this request"
    return "this server's /responses does not follow the OpenAI Responses API: Codex cannot use it"


def _judge_responses(run: ProbeRun, plain: dict[str, Any], reading: StreamReading) -> Verdict:
    data = {
        "response_id": (reading.completed or {}).get("id"),
        "events": reading.events,
        "items": items_summary(reading.items),
        "first_event_s": _r(reading.first_event_s),
        "first_text_s": _r(reading.first_text_s),
        "total_s": _r(reading.total_s),
        "usage": (reading.completed or {}).get("usage") or plain.get("usage"),
        "non_streamed_items": items_summary(plain.get("output") or []),
    }
    if reading.problems:
        return failed(f"streamed answer: {'; '.join(reading.problems)}", _server_fix(run), **data)
    summary = (f"non-streamed and streamed answers read like Codex reads them: {len(reading.events)} events, "
               f"response.completed with id {data['response_id']} after {reading.total_s:.2f} s")
    if reading.oddities:
        return warned(f"{summary}; but {'; '.join(reading.oddities)}", None, **data)
    return passed(summary, **data)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _clip(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# -- probe 6: tool call round trip ------------------------------------------------------------------------------

TOOL_PROMPT = "What does the file notes.txt say? Read it with the read_file tool, then tell me in one sentence."
_JSON_IN_PROSE = re.compile(r"\{[^{}]*\"(name|arguments|parameters|path|function)\"", re.S)


def probe_tools(run: ProbeRun) -> Verdict:
    assert run.client is not None
    body = codex_body(run.model, TOOL_PROMPT)
    with run.client.responses(body, stream=True, timeouts=run.budget()) as stream:
        first = read_responses_stream(stream)
    if first.problems:
        return failed(f"the answer to a tool request broke: {'; '.join(first.problems)}", _server_fix(run))
    calls = [i for i in first.items if i.get("type") == "function_call"]
    if not calls:
        return _prose_verdict(message_text(first.items) or first.text)
    call = calls[0]
    broken = _call_problem(call)
    if broken:
        return failed(f"the function call is malformed: {broken}", _tools_fix(), call=call)
    return _round_trip(run, body, call)


def _prose_verdict(text: str) -> Verdict:
    shown = _clip(text, 120)
    if _JSON_IN_PROSE.search(text):
        what = f"wrote the tool call as text instead of calling read_file: {shown!r}"
    else:
        what = f"answered in prose without calling read_file: {shown!r}" if text else "answered with nothing"
    return warned(f"asked to read a file with a tool, the model {what}. Codex edits will fail with this model",
                  _tools_fix(), answer=text[:500], tool_called=False)


def _tools_fix() -> str:
    from localcodex.domain.catalog import load_catalog

    families = " and ".join(load_catalog().text_tool_call_families()) or "some models"
    return ("use a model whose chat template supports tool calls (`localcodex recommend` lists them); "
            f"{families} writes calls as text, for example (the catalog's tool_calls_source says who saw it)")


def _call_problem(call: dict[str, Any]) -> str | None:
    name = call.get("name")
    if not name:
        return "it has no function name"
    if name not in TOOL_NAMES:
        return f"it calls {name!r}, a function it was not given"
    if not call.get("call_id"):
        return "it has no call_id (Codex cannot send the result back)"
    raw = call.get("arguments")
    try:
        args = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        args = None
    if not isinstance(args, dict):
        return f"its arguments are not a JSON object: {_clip(str(raw), 80)!r}"
    return None


def _round_trip(run: ProbeRun, body: dict[str, Any], call: dict[str, Any]) -> Verdict:
    assert run.client is not None
    back = {"type": "function_call", "call_id": call["call_id"], "name": call["name"],
            "arguments": call["arguments"]}
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": FILE_CONTENT}
    second = codex_body(run.model, TOOL_PROMPT, extra=(back, output))
    with run.client.responses(second, stream=True, timeouts=run.budget()) as stream:
        reading = read_responses_stream(stream)
    shown = f"{call['name']}({_clip(call['arguments'], 80)})"
    data: dict[str, Any] = {"call": {"name": call["name"], "arguments": json.loads(call["arguments"])}}
    if reading.problems:
        return failed(f"called {shown}, but the answer after the tool output broke: {'; '.join(reading.problems)}",
                      _server_fix(run), **data)
    final = message_text(reading.items) or reading.text
    data["final"] = final[:500]
    if final.strip():
        return passed(f"called {shown}, then answered from the tool output: {_clip(final, 80)!r}", **data)
    again = [i for i in reading.items if i.get("type") == "function_call"]
    if again:
        return warned(f"called {shown}, then called {again[0].get('name')} again instead of answering",
                      "fine for Codex (it loops on tool calls), but watch for models that never stop", **data)
    return failed(f"called {shown}, but answered nothing after the tool output", _tools_fix(), **data)



# -- probe 8: chat completions ----------------------------------------------------------------------------------


def probe_chat(run: ProbeRun) -> Verdict:
    from localcodex.adapters.openai_compat import HTTPStatusError

    assert run.client is not None
    body = {
        "model": run.model,
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "Reply with one short sentence."}],
        "stream_options": {"include_usage": True},
    }
    try:
        with run.client.chat_completions(body, stream=True, timeouts=run.budget()) as stream:
            seen = _read_chat(stream)
    except HTTPStatusError as exc:
        run.note_rejection(exc)
        return failed(f"POST {exc.message}", exc.hint, http_status=exc.status)
    return _judge_chat(seen)


def _read_chat(stream: EventStream) -> dict[str, Any]:
    seen: dict[str, Any] = {"chunks": 0, "role_first": None, "finish": None, "usage": None, "done": False,
                            "after_done": False, "bad": None, "first_token_s": None, "text": ""}
    for event in stream:
        if seen["done"]:
            seen["after_done"] = True
            break
        if event.done:
            seen["done"] = True
            continue
        try:
            chunk = event.json()
        except ValueError:
            seen["bad"] = event.data[:80]
            break
        _take_chunk(seen, chunk, event.received_at - stream.sent_at)
    return seen


def _take_chunk(seen: dict[str, Any], chunk: Any, at: float) -> None:
    seen["chunks"] += 1
    if not isinstance(chunk, dict):
        return
    if isinstance(chunk.get("usage"), dict) and not chunk.get("choices"):
        seen["usage"] = chunk["usage"]
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        if seen["role_first"] is None:
            seen["role_first"] = delta.get("role") == "assistant"
        if delta.get("content"):
            seen["text"] += delta["content"]
            seen["first_token_s"] = seen["first_token_s"] or round(at, 4)
        if choice.get("finish_reason"):
            seen["finish"] = choice["finish_reason"]


def _judge_chat(seen: dict[str, Any]) -> Verdict:
    data = {k: v for k, v in seen.items() if k != "text"} | {"text": seen["text"][:200]}
    if seen["bad"] is not None:
        return failed(f"a chunk is not JSON: {seen['bad']!r}", "check the server log", **data)
    if not seen["chunks"]:
        return failed("the stream carried no chunks", "check the server log", **data)
    if seen["finish"] is None and not seen["done"]:
        return failed(f"the stream ended after {seen['chunks']} chunks without a finish_reason or data: [DONE]: the "
                      "server failed in the middle of the answer (Ollama does not forward the error once a /v1 "
                      "stream has started)", "check the server log (out of memory? runner crashed?)", **data)
    if seen["finish"] is None:
        return failed("no chunk carried a finish_reason: clients cannot tell the answer is complete",
                      "check the server log", **data)
    gaps = []
    if not seen["role_first"]:
        gaps.append("the first chunk does not carry role=assistant")
    if seen["usage"] is None:
        gaps.append("no usage chunk although stream_options.include_usage was set (token counts unavailable)")
    if not seen["done"]:
        gaps.append("the stream did not end with data: [DONE]")
    summary = f"{seen['chunks']} chunks, finish_reason {seen['finish']!r}"
    if gaps:
        return warned(f"{summary}; but {'; '.join(gaps)}", "fine for Codex (it uses /responses); other clients "
                      "may mind", **data)
    usage = seen["usage"]
    return passed(f"{summary}, role first, usage ({usage.get('prompt_tokens')} prompt + "
                  f"{usage.get('completion_tokens')} completion tokens), then [DONE]", **data)


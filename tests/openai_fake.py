"""A small OpenAI-compatible server that is not Ollama (no `/api/*` routes), like llama-server, LM Studio, vLLM
or a gateway: `GET /v1/models`, `POST /v1/responses` (JSON and SSE, function calls) and
`POST /v1/chat/completions` (SSE with usage). Stdlib only, loopback only.

`responses_api=False` and `drop_completed=True` make it a server Codex cannot use. A token is a
whitespace-separated word. Prompts longer than `context` are cut to it silently (llama-server
style), or refused with 400 when `refuse_overflow` is set (vLLM style). `api_key` makes every route demand
`Authorization: Bearer <key>`.
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeOpenAI:
    models: tuple[str, ...] = ("local-model",)
    context: int = 65536
    refuse_overflow: bool = False
    api_key: str | None = None
    tool_style: str = "native"  # "native" (function_call items) or "prose" (JSON in the text)
    responses_api: bool = True  # False: /v1/responses is a 404, as on servers that only speak chat completions
    drop_completed: bool = False  # streams end without response.completed
    server_header: str = "fake-openai/1.0"
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(_Handler):
            server_version = fake.server_header
            sys_version = ""
            owner = fake

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


_ids = itertools.count(1)


def _tokens(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(_tokens(v) for k, v in value.items() if k in ("text", "content", "arguments", "output"))
    if isinstance(value, list):
        return sum(_tokens(v) for v in value)
    return 0


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
    owner: FakeOpenAI

    def log_message(self, *args: Any) -> None:
        pass

    # -- plumbing -----------------------------------------------------------------------------------------------

    def _body(self) -> Any:
        size = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(size) if size else b""
        return json.loads(raw) if raw else None

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": None}})

    def _sse(self, events: list[tuple[str | None, Any]]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for name, data in events:
            text = data if isinstance(data, str) else json.dumps(data)
            frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
            raw = frame.encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _authorized(self) -> bool:
        key = self.owner.api_key
        if key is None or self.headers.get("authorization") == f"Bearer {key}":
            return True
        self._error(401, "Incorrect API key provided")
        return False

    def _record(self, body: Any) -> None:
        self.owner.requests.append({"method": self.command, "path": self.path, "json": body,
                                    "headers": {k.lower(): v for k, v in self.headers.items()}})

    # -- routes -------------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._record(None)
        if not self._authorized():
            return
        if self.path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.owner.models]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, "File not found", "text/plain")

    def do_POST(self) -> None:
        body = self._body()
        self._record(body)
        if not self._authorized():
            return
        if self.path == "/v1/responses" and self.owner.responses_api:
            self._responses(body)
        elif self.path == "/v1/chat/completions":
            self._chat(body)
        else:
            self._send(404, "File not found", "text/plain")

    def _prompt_tokens(self, items: Any) -> int | None:
        tokens = _tokens(items)
        if tokens > self.owner.context:
            if self.owner.refuse_overflow:
                self._error(400, f"This model's maximum context length is {self.owner.context} tokens. "
                                 f"However, you requested {tokens} tokens.")
                return None
            return self.owner.context
        return tokens

    def _responses(self, body: dict[str, Any]) -> None:
        if body.get("model") not in self.owner.models:
            self._error(404, f"model {body.get('model')!r} not found")
            return
        prompt = self._prompt_tokens(body.get("input"))
        if prompt is None:
            return
        items = _answer_items(body, self.owner.tool_style)
        response = {"id": f"resp_{next(_ids)}", "object": "response", "status": "completed",
                    "model": body["model"], "output": items,
                    "usage": {"input_tokens": prompt, "output_tokens": 5, "total_tokens": prompt + 5}}
        if not body.get("stream"):
            self._send(200, response)
            return
        events = _response_events(response)
        self._sse(events[:-1] if self.owner.drop_completed else events)

    def _chat(self, body: dict[str, Any]) -> None:
        prompt = self._prompt_tokens(body.get("messages"))
        if prompt is None:
            return
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body.get("model")}
        words = ["Hello", " there", "."]
        chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None}]}]
        chunks += [{**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
                   for w in words]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [],
                           "usage": {"prompt_tokens": prompt, "completion_tokens": 3, "total_tokens": prompt + 3}})
        self._sse([(None, c) for c in chunks] + [(None, "[DONE]")])


def _answer_items(body: dict[str, Any], tool_style: str) -> list[dict[str, Any]]:
    inputs = body.get("input") or []
    has_output = any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in inputs)
    wants_tool = bool(body.get("tools")) and "tool" in json.dumps(inputs[-1:]) and not has_output
    if wants_tool and tool_style == "native":
        return [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "read_file",
                 "arguments": json.dumps({"path": "notes.txt"}), "status": "completed"}]
    if wants_tool:
        text = 'I will call the tool: {"name": "read_file", "arguments": {"path": "notes.txt"}}'
    elif has_output:
        text = "The file says the release is planned for Thursday."
    else:
        text = "Ready."
    return [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": text, "annotations": []}]}]


def _response_events(response: dict[str, Any]) -> list[tuple[str | None, Any]]:
    pending = {**response, "status": "in_progress", "output": []}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"type": "response.created", "response": pending}),
        ("response.in_progress", {"type": "response.in_progress", "response": pending}),
    ]
    for index, item in enumerate(response["output"]):
        events.append(("response.output_item.added",
                       {"type": "response.output_item.added", "output_index": index, "item": {**item}}))
        if item["type"] == "message":
            text = item["content"][0]["text"]
            for word in text.split(" "):
                events.append(("response.output_text.delta", {"type": "response.output_text.delta",
                               "output_index": index, "content_index": 0, "delta": word + " "}))
            events.append(("response.output_text.done", {"type": "response.output_text.done",
                           "output_index": index, "content_index": 0, "text": text}))
        else:
            events.append(("response.function_call_arguments.done", {"type": "response.function_call_arguments.done",
                           "output_index": index, "arguments": item["arguments"]}))
        events.append(("response.output_item.done",
                       {"type": "response.output_item.done", "output_index": index, "item": item}))
    events.append(("response.completed", {"type": "response.completed", "response": response}))
    return [(name, {**data, "sequence_number": n}) for n, (name, data) in enumerate(events)]

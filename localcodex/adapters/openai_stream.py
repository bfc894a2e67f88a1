"""A minimal streaming client for any OpenAI-compatible `/v1/chat/completions` (Ollama, llama-server,
LM Studio, vLLM, a gateway), for the benchmark: it yields each content delta with the time it arrived.

TODO(merge): `check` writes the full `/v1` client as `localcodex/adapters/openai_compat.py`; once it is on main,
this module should become a thin use of it (keep the per-delta `received_at`, which the decode rate needs).

Every failure becomes one LocalcodexError naming the URL: refused connection, timeout, HTTP error with the
OpenAI error body's message, a connection broken mid-stream, an `{"error": …}` event, unreadable JSON.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localcodex.adapters.sse import iter_sse
from localcodex.errors import (
    ExitCode,
    LocalcodexError,
    NotFound,
    OllamaUnavailable,
    ServerError,
    StepTimeout,
)

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class ChatDelta:
    """One streamed chunk: its text (content or reasoning), finish reason and usage when present."""

    text: str
    received_at: float
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


def _error_message(reply: httpx.Response) -> str:
    """The `message` of an OpenAI error body, Ollama's `{"error": "…"}`, or the start of a text body."""
    with contextlib.suppress(Exception):
        body = reply.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return reply.text.strip()[:200] or reply.reason_phrase


class OpenAIStream:
    """One connection pool to one base URL (e.g. `http://127.0.0.1:11434/v1`). Not shared across threads."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 120.0) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), headers=headers)
        self.timeout = timeout

    def set_timeout(self, seconds: float) -> None:
        """Change the timeout of later calls, keeping the open connection."""
        import httpx

        self.timeout = seconds
        self._client.timeout = httpx.Timeout(seconds, connect=min(seconds, 10.0))

    def close(self) -> None:
        self._client.close()

    @contextlib.contextmanager
    def errors(self, what: str, model: str | None = None) -> Iterator[None]:
        import httpx

        url = self.base_url
        try:
            yield
        except LocalcodexError:
            raise
        except httpx.TimeoutException as exc:
            raise StepTimeout(
                f"{what}: {url} did not answer within {self.timeout:g} s", "check that the server is not stuck"
            ) from exc
        except httpx.ConnectError as exc:
            raise OllamaUnavailable(
                f"cannot reach {url}", "start the server, or check --base-url (it ends in /v1)"
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise ServerError(f"{what}: the connection to {url} broke: {exc}", "retry") from exc
        except httpx.HTTPError as exc:
            raise ServerError(f"{what}: talking to {url} failed: {exc}") from exc
        except ValueError as exc:
            raise ServerError(f"{what}: {url} sent an answer that cannot be read: {exc}") from exc

    def _raise_for_status(self, reply: httpx.Response, what: str, model: str | None) -> None:
        if reply.status_code < 400:
            return
        reply.read()
        message = _error_message(reply)
        if reply.status_code in (401, 403):
            raise LocalcodexError(
                f"{what}: {self.base_url} refused the request (HTTP {reply.status_code}): {message}",
                "pass --env-key NAME, where the environment variable NAME holds the API key",
                code="unauthorized",
                exit_code=ExitCode.CONFIG,
            )
        if reply.status_code == 404:
            subject = f"model {model!r}" if model and "model" in message.lower() else "the route"
            raise NotFound(f"{what}: {subject} not found at {self.base_url} ({message})",
                           "check the model name and that --base-url ends in /v1")
        raise ServerError(f"{what}: {self.base_url} answered HTTP {reply.status_code}: {message}")

    def models(self) -> list[str]:
        """The ids `GET /models` lists (an empty list when the server has no such route)."""
        with self.errors("listing models"):
            reply = self._client.get(f"{self.base_url}/models")
            if reply.status_code in (404, 405):
                return []
            self._raise_for_status(reply, "listing models", None)
            data = reply.json().get("data") or []
        return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]

    def chat_stream(self, model: str, messages: list[dict[str, Any]], **params: Any) -> Iterator[ChatDelta]:
        """Stream one chat completion (`stream_options.include_usage` on), one ChatDelta per chunk with text,
        plus the finish chunk and the usage chunk (empty text)."""
        body = {"model": model, "messages": messages, "stream": True,
                "stream_options": {"include_usage": True}, **params}
        what = f"asking {model}"
        with self.errors(what, model), self._client.stream(
            "POST", f"{self.base_url}/chat/completions", json=body
        ) as reply:
            self._raise_for_status(reply, what, model)
            for event in iter_sse(reply.iter_lines()):
                if event.done:
                    return
                delta = _delta(event.json(), event.received_at, what, self.base_url)
                if delta is not None:
                    yield delta


def _delta(chunk: Any, at: float, what: str, url: str) -> ChatDelta | None:
    if not isinstance(chunk, dict):
        raise ValueError(f"expected a JSON object, got {type(chunk).__name__}")
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ServerError(f"{what} failed: {url} answered in the middle of the stream: {message}")
    usage = chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None
    choices = chunk.get("choices") or []
    if not choices:
        return ChatDelta("", at, None, usage) if usage else None
    choice = choices[0]
    delta = choice.get("delta") or {}
    text = delta.get("content") or delta.get("reasoning") or delta.get("reasoning_content") or ""
    return ChatDelta(str(text), at, choice.get("finish_reason"), usage)

"""The emulator's deterministic tokenizer and Ollama's prompt truncation.

Tokenizer rule (prompt side):

* ``count_text(s)`` = ceil(UTF-8 bytes of ``s`` / 4)
* each chat message costs ``MESSAGE_OVERHEAD`` (4) + ``count_text`` of its content, its
  thinking, and the compact JSON of each tool call's ``{"name", "arguments"}``
* tool definitions cost ``count_text`` of the compact JSON of the native tool list
* generate counts its prompt (and ``system``) as messages, plus ``len(context)``

Output side: the answer text is cut into pieces by :func:`pieces` (optional leading
whitespace plus up to four non-space characters); one piece = one token = one chunk.

Truncation (what Ollama does when the prompt exceeds ``num_ctx``):

1. chat only (``server/prompt.go chatPrompt``): drop whole messages from the front,
   always keeping system messages, the last message, and an assistant tool-call turn
   together with the tool results that answer it, until the prompt fits ``num_ctx``;
2. then the runner: from v0.30.0 (llama-server) a prompt of more than ``num_ctx - 1``
   tokens keeps its first ``num_keep`` (4) tokens and its tail, ``num_ctx -
   max((num_ctx - num_keep) // 2, 1)`` tokens in all (2050 of 4096: the log line
   ``truncating input prompt limit=2050 prompt=8707 keep=4 new=2050``); older runners
   cut to exactly ``num_ctx``.
"""

from __future__ import annotations

import json
import re
from typing import Any

MESSAGE_OVERHEAD = 4
NUM_KEEP = 4
_PIECE = re.compile(r"\s*\S{1,4}|\s+")


def count_text(text: str | None) -> int:
    """Tokens of a string.

    >>> count_text("abcd"), count_text("abcde"), count_text("")
    (1, 2, 0)
    """
    return (len((text or "").encode()) + 3) // 4


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def message_tokens(message: dict[str, Any]) -> int:
    total = MESSAGE_OVERHEAD + count_text(message.get("content")) + count_text(message.get("thinking"))
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        total += count_text(compact({"name": function.get("name"), "arguments": function.get("arguments")}))
    return total


def tools_tokens(tools: list[dict[str, Any]] | None) -> int:
    return count_text(compact(tools)) if tools else 0


def prompt_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """Untruncated prompt size of a chat request (native messages and tools)."""
    return tools_tokens(tools) + sum(message_tokens(m) for m in messages)


def _tool_block_start(messages: list[dict[str, Any]], index: int) -> int:
    """Step back from a tool result to the assistant turn that made the call."""
    if index <= 0 or messages[index].get("role") != "tool":
        return index
    start = index
    while start > 0 and messages[start - 1].get("role") == "tool":
        start -= 1
    previous = messages[start - 1] if start > 0 else {}
    if previous.get("role") == "assistant" and previous.get("tool_calls"):
        return start - 1
    return index


def drop_old_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                      num_ctx: int) -> list[dict[str, Any]]:
    """Step 1 of the truncation: the messages that stay in the prompt."""
    for index in range(len(messages)):
        start = _tool_block_start(messages, index)
        kept = [m for m in messages[:start] if m.get("role") == "system"] + messages[start:]
        if prompt_tokens(kept, tools) <= num_ctx or index == len(messages) - 1:
            return kept
    return messages


def runner_truncate(count: int, num_ctx: int, llama_server: bool) -> int:
    """Step 2: prompt tokens the runner actually evaluates.

    >>> runner_truncate(8707, 4096, True), runner_truncate(7268, 4096, False)
    (2050, 4096)
    """
    if llama_server:
        if num_ctx <= 1 or count <= num_ctx - 1:
            return count
        keep = max(0, min(NUM_KEEP, num_ctx - 1))
        return num_ctx - max((num_ctx - keep) // 2, 1)
    return min(count, num_ctx)


def pieces(text: str) -> list[str]:
    """Cut output text into tokens; ``"".join(pieces(t)) == t``.

    >>> pieces("Hello world")
    ['Hell', 'o', ' worl', 'd']
    """
    return _PIECE.findall(text)

"""check's probe 7: the context the model really runs with, and whether a prompt longer than Codex needs
arrives whole or is cut silently."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from localcodex.core.check.state import ProbeDeadline, ProbeRun
from localcodex.core.check.types import Verdict, failed, passed, warned
from localcodex.core.check.wire import codex_body

# -- probe 7: context -------------------------------------------------------------------------------------------

_FILLER = (
    "river", "garden", "window", "silver", "planet", "market", "forest", "bridge", "candle", "harbor", "meadow",
    "pencil", "rocket", "saddle", "temple", "valley", "winter", "yellow", "anchor", "basket", "castle", "desert",
    "engine", "falcon", "ginger", "hammer", "island", "jungle", "kettle", "ladder", "mirror", "needle", "orange",
    "pepper", "quartz", "ribbon", "shadow", "ticket", "velvet", "walnut", "zipper", "blanket", "compass",
)


def filler_words(count: int) -> str:
    """`count` ordinary words: every tokenizer makes at least one token of each, so the prompt has at least
    `count` tokens whatever the model."""
    return " ".join(_FILLER[(i * 7 + i // len(_FILLER)) % len(_FILLER)] for i in range(count))


@dataclass
class _ContextSeen:
    need: int
    sent: int  # the long prompt had at least this many tokens
    loaded: int | None = None  # /api/ps context_length, or the model's num_ctx
    source: str | None = None
    measured: int | None = None  # input tokens the server counted for the long prompt
    refusal: str | None = None  # the server's words when it refused the long prompt
    late: str | None = None  # why the long-prompt test did not finish

    @property
    def cut(self) -> bool:
        return self.measured is not None and self.measured < self.need

    def data(self) -> dict[str, Any]:
        return {"loaded_context": self.loaded, "source": self.source, "sent_at_least": self.sent,
                "input_tokens": self.measured, "min_context": self.need, "truncated": self.cut,
                "gave_up": self.late is not None}


def context_words(need: int, stated: int | None) -> int:
    """Words of the long prompt: more than the context Codex needs, and than the one the server states."""
    return math.ceil(max(need, stated or 0) * 1.1) + 64


def probe_context(run: ProbeRun) -> Verdict:
    need = run.req.min_context
    loaded, source = _loaded_context(run)
    seen = _ContextSeen(need=need, sent=context_words(need, None if run.is_ollama else loaded),
                        loaded=loaded, source=source)
    seen.measured, seen.refusal, seen.late = _truncation_test(run, seen.sent)
    if run.is_ollama and seen.loaded is None:  # the long prompt loaded it
        seen.loaded, seen.source = _loaded_context(run)
    run.context_length = seen.loaded if seen.loaded is not None else (seen.measured if seen.cut else None)
    return _judge_context(run, seen)


def _loaded_context(run: ProbeRun) -> tuple[int | None, str | None]:
    if not run.is_ollama or run.ollama is None:
        from localcodex.adapters.server_facts import server_context

        stated = server_context(run.client, run.model, ollama_ps=False) if run.client is not None else None
        return (stated.tokens, stated.source) if stated else (None, None)
    from localcodex.core.variant import loaded_runner

    running = loaded_runner(run.ollama, run.model)  # by weights too: /api/ps may name the base model
    if running is not None and running.context_length:
        return running.context_length, "/api/ps"
    details = run.ollama.show(run.model)
    if details.num_ctx:
        return details.num_ctx, "num_ctx of the model"
    return None, None


def _truncation_test(run: ProbeRun, words: int) -> tuple[int | None, str | None, str | None]:
    """Send a prompt of at least `words` tokens; return (input tokens the server counted, its refusal, timeout)."""
    from localcodex.adapters.openai_compat import EndpointTimeout, HTTPStatusError

    assert run.client is not None
    # The filler goes in a `user` message: every template renders those, while many (qwen3, qwen2.5-coder,
    # GLM-4.7: Ollama model/renderers/glm47.go ~73-100) drop `developer` messages, which then count zero.
    prompt = f"Background notes (ignore them):\n{filler_words(words)}\n\nReply with the single word OK."
    body = codex_body(run.model, prompt, tools=())
    body["max_output_tokens"] = 16
    try:
        answer = run.client.responses(body, timeouts=run.budget())
    except HTTPStatusError as exc:
        if exc.status in (400, 413, 422):
            return None, exc.reply.error_message(), None
        raise
    except (EndpointTimeout, ProbeDeadline) as exc:
        return None, None, exc.message
    found = answer.get("usage")
    usage: dict[str, Any] = found if isinstance(found, dict) else {}
    tokens = usage.get("input_tokens")
    return (int(tokens) if isinstance(tokens, (int, float)) else None), None, None


def _context_fix(run: ProbeRun, need: int) -> str:
    target = 1 << max(need - 1, 1).bit_length()
    if run.is_ollama:
        return (f"`localcodex models context {run.model} --ctx {target}` creates a variant with that context; "
                "point the Codex profile at it (and set model_context_window to match)")
    return (f"restart the server with a context of at least {target} tokens (llama-server: -c {target}; "
            f"vLLM: --max-model-len {target}; LM Studio: the model's Context Length)")


def _judge_context(run: ProbeRun, seen: _ContextSeen) -> Verdict:
    need, sent, measured, data = seen.need, seen.sent, seen.measured, seen.data()
    head = f"loaded with a context of {seen.loaded:,} tokens ({seen.source})" if seen.loaded else ""
    lead = f"{head}; " if head else ""
    fix = _context_fix(run, need)
    if seen.refusal is not None and seen.loaded is not None and seen.loaded >= need and not run.is_ollama:
        return passed(f"{head}, at least the {need:,} Codex needs; a longer prompt ({sent:,}+ tokens) was refused "
                      f"({seen.refusal!r}), not cut silently", **data)
    if seen.refusal is not None:
        return failed(f"{lead}the server refused a prompt of at least {sent:,} tokens ({seen.refusal!r}): its "
                      f"context is below the {need:,} tokens Codex needs", fix, **data)
    if seen.cut:
        return failed(f"{lead}a prompt of at least {sent:,} tokens arrived as {measured:,} input tokens: the server "
                      f"cut it silently, as it would cut Codex's prompts. Codex needs at least {need:,}", fix, **data)
    if seen.loaded is not None and seen.loaded < need:
        return failed(f"{head}: below the {need:,} tokens Codex needs (its instructions and tools alone take "
                      "4-6k, and longer prompts are cut silently)", fix, **data)
    if seen.late is not None or measured is None:
        why = f"the long-prompt test did not finish ({seen.late})" if seen.late else "the server reported no usage"
        if seen.loaded is not None:
            return warned(f"{head}; truncation not verified: {why}", "raise --timeout to let the test finish", **data)
        return warned(f"context unknown: {why}", f"make sure the server keeps at least {need:,} tokens: {fix}",
                      **data)
    return passed(f"{lead}a prompt of at least {sent:,} tokens arrived whole ({measured:,} input tokens): "
                  f"at least the {need:,} Codex needs", **data)


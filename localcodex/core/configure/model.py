"""The model configure writes and the context window the server really runs it with: from the options, else
from Ollama (`show`, `ps`) or the OpenAI-compatible server's own statement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localcodex.adapters.server_facts import ServerContext
from localcodex.core.configure.types import ConfigureRequest, Progress
from localcodex.core.ports import Live
from localcodex.errors import LocalcodexError, OllamaUnavailable, UsageError


@dataclass(frozen=True)
class ModelFacts:
    model: str
    context: int | None
    source: str
    warnings: tuple[str, ...] = ()


def resolve_model(req: ConfigureRequest, live: Live, on_progress: Progress) -> ModelFacts:
    """The model and its real context window: from the options, else from the Ollama server."""
    if req.base_url:
        if not req.model:
            raise UsageError("--model is required with --base-url", "name the model the server serves")
        if req.context:
            return ModelFacts(req.model, req.context, "--context", ())
        stated = _server_context(req, live, on_progress)
        if stated is not None:
            return ModelFacts(req.model, stated.tokens, f"server: {stated.source}", ())
        return ModelFacts(req.model, None, "unknown", (
            "no --context given and the server does not state its context: Codex will assume a 272k-token "
            "window for this model; pass --context N with the server's real context size so Codex compacts in time",
        ))
    if req.model and req.context and not req.ask_ollama:
        return ModelFacts(req.model, req.context, "--context", ())
    server = live.ollama_at(live.host(req.host), timeout=10.0)
    on_progress(f"asking Ollama at {server.host.native} about the model")
    try:
        model = req.model or _only_model(server)
        details = server.show(model)
    except OllamaUnavailable as exc:
        if req.model and req.context:
            return ModelFacts(req.model, req.context, "--context", (
                f"could not reach Ollama at {server.host.native} to check that {req.model} is installed",))
        raise OllamaUnavailable(
            exc.message,
            f"{exc.hint}; or pass --model and --context to write the profile without asking Ollama",
        ) from None
    return _context_from(server, model, details, req.context)


def _server_context(req: ConfigureRequest, live: Live, on_progress: Progress) -> ServerContext | None:
    """The context the OpenAI-compatible server states for the model (llama-server's /props, /v1/models
    meta.n_ctx; Ollama's /api/ps), or None: not stated, unreachable, or no key to ask with."""
    from localcodex.adapters.server_facts import server_context

    assert req.base_url
    on_progress(f"asking {req.base_url} for the context it runs {req.model} with")
    try:
        with live.openai_client(req.base_url, env_key=req.env_key) as client:
            return server_context(client, req.model)
    except LocalcodexError:
        return None


def _only_model(server: Any) -> str:
    models = server.list()
    if len(models) == 1:
        return models[0].name
    names = ", ".join(m.name for m in models[:8]) + (" …" if len(models) > 8 else "")
    raise UsageError(
        "--model is required" + (f": Ollama has {len(models)} models ({names})" if models else
                                 ": Ollama has no models installed"),
        "pass --model NAME (localcodex recommend shows what fits this machine)",
    )


def _context_from(server: Any, model: str, details: Any, explicit: int | None) -> ModelFacts:
    warnings = []
    if details.capabilities and not details.supports_tools:
        warnings.append(f"{model} does not support tool calling; Codex cannot edit files or run commands with it")
    if explicit:
        if details.num_ctx and details.num_ctx != explicit:
            warnings.append(f"--context {explicit} differs from the num_ctx {details.num_ctx} {model} runs with")
        return ModelFacts(model, explicit, "--context", tuple(warnings))
    ctx, source = details.num_ctx, "model num_ctx"
    if not ctx:
        loaded = next((m for m in server.ps() if m.name == model or m.name == details.name), None)
        ctx, source = (loaded.context_length, "loaded model") if loaded else (None, "unknown")
    if not ctx:
        raise UsageError(
            f"{model} has no num_ctx parameter, so Ollama picks its context when it loads it "
            "(4096 on most machines, too small for Codex)",
            "pass --context N, or make a context variant with a fixed num_ctx (`localcodex setup` does)",
        )
    if details.context_length and ctx > details.context_length:
        warnings.append(f"num_ctx {ctx} exceeds what {model} was trained for; Ollama caps it at "
                        f"{details.context_length}")
        ctx = details.context_length
    return ModelFacts(model, ctx, source, tuple(warnings))


# Codex sends its instructions and tool schemas with every request: about 7k tokens on 0.169 before any work.
CODEX_OVERHEAD_TOKENS = 7000


def context_warnings(context: int | None) -> list[str]:
    if context and context < 2 * CODEX_OVERHEAD_TOKENS:
        return [f"a {context}-token window leaves little room: Codex's instructions and tools alone take about "
                f"{CODEX_OVERHEAD_TOKENS} tokens; 16384 or more works much better"]
    return []

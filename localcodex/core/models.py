"""What is installed: `localcodex models list`, one row per model with what matters for Codex."""

from __future__ import annotations

from dataclasses import dataclass

from localcodex.adapters.ollama import OllamaServer
from localcodex.errors import NotFound


@dataclass(frozen=True)
class ModelRow:
    name: str
    size: int
    digest: str
    modified_at: str
    num_ctx: int | None  # the context the model carries (PARAMETER num_ctx); None = the server's default
    trained_context: int | None
    capabilities: tuple[str, ...]
    quantization: str | None
    parameter_size: str | None
    family: str | None

    @property
    def codex_ready(self) -> bool:
        """Usable by Codex as is: it calls tools and carries a context of its own."""
        return "tools" in self.capabilities and bool(self.num_ctx)


def list_models(server: OllamaServer) -> tuple[ModelRow, ...]:
    """Every installed model, with `/api/show` details (one request per model, in `/api/tags` order)."""
    rows = []
    for model in server.list():
        try:
            details = server.show(model.name)
        except NotFound:  # deleted between the two requests
            continue
        rows.append(ModelRow(
            name=model.name, size=model.size, digest=model.digest, modified_at=model.modified_at,
            num_ctx=details.num_ctx, trained_context=details.context_length, capabilities=details.capabilities,
            quantization=details.quantization_level or model.quantization_level,
            parameter_size=details.parameter_size or model.parameter_size, family=details.family or model.family,
        ))
    return tuple(rows)

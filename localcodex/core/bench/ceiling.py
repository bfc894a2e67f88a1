"""The decode ceiling that `bench` sets each measurement against ("% of ceiling"), from `recommend`'s speed model.

The ceiling is the bandwidth bound alone (bytes read per token over the memory bandwidth of the devices the
model sits on, no efficiency factor), so a healthy setup lands at roughly 50-90 %; far below says something is
wrong (CPU spill, a throttled GPU, a busy machine). It only makes sense for the hardware we can see: a server on
another machine gets no ceiling.
"""

from __future__ import annotations

from localcodex.adapters.ollama import OllamaServer
from localcodex.core.recommend.fit import DEFAULT_SETTINGS, Settings
from localcodex.core.recommend.live import LiveModel, resolve_installed
from localcodex.core.recommend.speed import RamBandwidth, estimate_for
from localcodex.domain.bench import Ceiling
from localcodex.domain.catalog import load_catalog
from localcodex.domain.machine import Machine
from localcodex.errors import LocalcodexError

DEFAULT_NUM_CTX = 4096


def speed_model_ceiling(machine: Machine, server: OllamaServer, *, ram: RamBandwidth | None = None,
                        settings: Settings | None = None) -> Ceiling:
    """A `Ceiling` for models installed on the Ollama `server`, evaluated on `machine` (this one).

    Each model is described the way `recommend` sees it (catalog entry with the server's live `/api/show`
    figures, or built from `/api/show` alone) and looked up once.
    """
    catalog = load_catalog()
    resolved: dict[str, object] = {}

    def describe(model: str) -> object:
        if model not in resolved:
            try:
                installed, details = server.find(model), server.show(model)
            except LocalcodexError:
                installed = details = None
            live = LiveModel(installed, details) if installed is not None else None
            resolved[model] = resolve_installed(live, catalog) if live is not None else None
        return resolved[model]

    def ceiling(model: str, num_ctx: int | None, context_tokens: int) -> float | None:
        entry = describe(model)
        if entry is None:
            return None
        ctx = num_ctx or getattr(entry, "num_ctx_param", None) or DEFAULT_NUM_CTX
        return estimate_for(entry.model, machine, num_ctx=ctx,  # type: ignore[attr-defined]
                            context_tokens=min(context_tokens, ctx), ram=ram,
                            settings=settings or DEFAULT_SETTINGS).ceiling_tps

    return ceiling

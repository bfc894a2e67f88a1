"""Models installed in Ollama, as the fit and speed models see them: live `/api/show` numbers win.

For a model the catalog knows, what the server says about the installed copy (its size, capabilities,
trained context, layer and head counts) overrides the catalog's figures, since the tag may have been
re-uploaded since the catalog was dated. An installed model the catalog does not know is described from
its `model_info` alone: `CatalogModel` is built from the GGUF keys, conservatively where a number is not
visible (non-verbose `/api/show` hides per-layer arrays, so a hybrid model's layout may be unknown; then
every layer is counted as full attention, which over-states its KV cache rather than under-stating it).
A model created from a catalog model (a context variant such as the ones `setup` makes) shares its
architecture, parameter count and size, and is matched back to that entry so it keeps its quality tier.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from localcodex.adapters.ollama import InstalledModel, ModelDetails
from localcodex.domain.catalog import Catalog, CatalogModel
from localcodex.domain.names import display_name

UNRATED_TIER = 5  # an installed model no benchmark in the catalog speaks for ranks with the weakest
SAME_WEIGHTS_TOLERANCE = 0.03  # size difference below which a variant is taken for its catalog base


@dataclass(frozen=True)
class LiveModel:
    """One installed model: `/api/tags` entry plus its `/api/show` details (None when show failed)."""

    installed: InstalledModel
    details: ModelDetails | None


@dataclass(frozen=True)
class Resolved:
    """A model ready for fit/speed: the (possibly live-overridden) catalog record and where it came from."""

    model: CatalogModel
    installed: bool
    source: str  # "catalog" | "catalog + live /api/show" | "live /api/show" | "live /api/show, same weights as X"
    rated: bool = True  # False: no coding tier from the catalog
    num_ctx_param: int | None = None  # the installed model's own PARAMETER num_ctx
    notes: tuple[str, ...] = ()


def _info(details: ModelDetails, key: str) -> Any:
    arch = details.architecture
    return details.model_info.get(f"{arch}.{key}") if arch else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    return None


def resolve_installed(live: LiveModel, catalog: Catalog) -> Resolved | None:
    """The installed model as fit/speed will evaluate it; None when /api/show gave too little to go on."""
    entry = catalog.get(live.installed.name)
    details = live.details
    if entry is not None:
        if details is None:
            return Resolved(entry, True, "catalog (installed; /api/show failed)")
        model, notes = _override(entry, live.installed, details)
        return Resolved(model, True, "catalog + live /api/show", True, details.num_ctx, notes)
    if details is None:
        return None
    base = _same_weights(live.installed, details, catalog)
    if base is not None:
        model, notes = _override(base, live.installed, details)
        model = dataclasses.replace(model, tag=display_name(live.installed.name), aliases=())
        return Resolved(model, True, f"live /api/show, same weights as {base.tag}", True, details.num_ctx, notes)
    model, notes = from_show(live.installed, details)
    if model is None:
        return None
    return Resolved(model, True, "live /api/show", False, details.num_ctx, notes)


def _same_weights(installed: InstalledModel, details: ModelDetails, catalog: Catalog) -> CatalogModel | None:
    if not details.architecture or not installed.size:
        return None
    for entry in catalog:
        if entry.architecture != details.architecture:
            continue
        size_close = abs(entry.download_bytes - installed.size) <= SAME_WEIGHTS_TOLERANCE * entry.download_bytes
        params = details.parameter_count
        params_close = params is None or abs(entry.params_total - params) <= 0.05 * entry.params_total
        if size_close and params_close and details.block_count in (None, entry.block_count):
            return entry
    return None


def _override(entry: CatalogModel, installed: InstalledModel, details: ModelDetails) -> tuple[CatalogModel, tuple]:
    """The catalog entry with the live figures that are unambiguous put in its place."""
    changes: dict[str, Any] = {}
    notes: list[str] = []
    if installed.size:
        changes["download_bytes"] = installed.size
    if details.capabilities:
        caps = tuple(c.lower() for c in details.capabilities)
        if set(caps) != set(entry.capabilities):
            notes.append(f"capabilities from the server: {', '.join(caps)} (catalog: {', '.join(entry.capabilities)})")
        changes["capabilities"] = caps
    if details.context_length:
        changes["context_length"] = details.context_length
    if details.parameter_count:
        ratio = entry.params_active / entry.params_total if entry.params_total else 1.0
        changes["params_total"] = details.parameter_count
        changes["params_active"] = round(details.parameter_count * ratio)
    if details.block_count and details.block_count != entry.block_count:
        notes.append(f"{details.block_count} layers on the server, {entry.block_count} in the catalog: layout rebuilt")
        rebuilt, more = from_show(installed, details)
        if rebuilt is not None:
            return dataclasses.replace(rebuilt, coding_tier=entry.coding_tier, coding_source=entry.coding_source,
                                       tag=entry.tag, aliases=entry.aliases), (*notes, *more)
    return dataclasses.replace(entry, **changes), tuple(notes)


def from_show(installed: InstalledModel, details: ModelDetails) -> tuple[CatalogModel | None, tuple[str, ...]]:
    """A CatalogModel built from `/api/show` alone (GGUF keys); None without layer/head/width figures."""
    blocks, heads, width = details.block_count, details.head_count, details.embedding_length
    if not (blocks and heads and width):
        return None, ("/api/show gave no layer, head or width figures",)
    notes: list[str] = []
    kv_heads = details.head_count_kv or heads
    head_k = details.key_length or width // heads
    head_v = details.value_length or head_k
    kv_layers, recurrent = _layout(details, blocks, notes)
    params = details.parameter_count or int(installed.size / 0.6)
    active = params
    if (_int(_info(details, "expert_count")) or 0) > 0:
        notes.append("mixture of experts without an active-parameter figure: speed counts every weight")
    window = _int(_info(details, "attention.sliding_window")) or 0
    if window:
        notes.append("sliding-window layers not visible in /api/show: KV counted as if every layer were global")
    model = CatalogModel(
        tag=display_name(installed.name), family=details.family or details.architecture or "unknown",
        architecture=details.architecture or "unknown", download_bytes=installed.size,
        download_display="", params_total=params, params_active=active,
        quantization=details.quantization_level or installed.quantization_level or "unknown",
        bits_per_weight=8 * installed.size / params if params else 0.0,
        block_count=blocks, head_count=heads, head_count_kv=kv_heads, head_dim_k=head_k, head_dim_v=head_v,
        embedding_length=width, kv_layers=kv_layers, context_length=details.context_length or 4096,
        capabilities=tuple(c.lower() for c in details.capabilities), license="", coding_tier=UNRATED_TIER,
        coding_source="not in the catalog: no coding benchmark on record", sources=("live /api/show",),
        recurrent_layers=recurrent, recurrent_state_bytes=_recurrent_bytes(details, recurrent),
        ssm_conv_kernel=_int(_info(details, "ssm.conv_kernel")) or 0,
        ssm_inner_size=_int(_info(details, "ssm.inner_size")) or 0,
        ssm_state_size=_int(_info(details, "ssm.state_size")) or 0,
        ssm_group_count=_int(_info(details, "ssm.group_count")) or 0,
    )  # fmt: skip
    return model, tuple(notes)


def _layout(details: ModelDetails, blocks: int, notes: list[str]) -> tuple[int, int]:
    """(layers with a full KV cache, linear-attention layers) from the keys /api/show shows."""
    raw = _info(details, "attention.head_count_kv")
    if isinstance(raw, list) and raw:
        full = sum(1 for v in raw if v)
        return full, blocks - full
    interval = _int(_info(details, "full_attention_interval"))
    if interval and interval > 1:
        full = blocks // interval
        return full, blocks - full
    if _int(_info(details, "ssm.state_size")):
        notes.append("recurrent layers present but their count is not visible: every layer counted as attention")
    return blocks, 0


def _recurrent_bytes(details: ModelDetails, layers: int) -> int:
    conv = _int(_info(details, "ssm.conv_kernel")) or 0
    inner = _int(_info(details, "ssm.inner_size")) or 0
    state = _int(_info(details, "ssm.state_size")) or 0
    groups = _int(_info(details, "ssm.group_count")) or 0
    if not (layers and inner and state):
        return 0
    return 4 * (max(conv - 1, 0) * (inner + 2 * groups * state) + state * inner) * layers

"""The quantization ladder: one published quantization per model, the best that fits a Codex-sized context.

A catalog entry with `quant_of` is another published quantization (a "rung") of a default tag: Q8_0 above
the default Q4_K_M, Q3_K_M below it. `recommend` evaluates every rung like any model, then keeps one offer
per ladder (best_quantization); the others stay listed with `--all`, each naming the rung offered instead
and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from localcodex.domain.catalog import Catalog, CatalogModel

COMFORTABLE_TPS = 20.0  # above this, more speed no longer beats a bigger model (or more bits) of the same tier


class Rung(Protocol):
    """What the ladder reads of a ranked candidate (core/recommend/rank.py `Candidate`)."""

    @property
    def model(self) -> str: ...
    @property
    def offered(self) -> bool: ...
    @property
    def group(self) -> int: ...
    @property
    def meets_target(self) -> bool: ...
    @property
    def num_ctx(self) -> int | None: ...
    @property
    def decode_tps(self) -> float | None: ...
    @property
    def low_quant(self) -> bool: ...


LOW_QUANT_PREFIXES = ("Q2", "Q3", "IQ1", "IQ2", "IQ3", "TQ")


def is_low_quant(quantization: str) -> bool:
    """2- and 3-bit quantizations lose noticeable quality: they only win when nothing else of the tier fits.

    >>> is_low_quant("Q3_K_M"), is_low_quant("Q4_K_M"), is_low_quant("MXFP4")
    (True, False, False)
    """
    return quantization.upper().startswith(LOW_QUANT_PREFIXES)


def context_bucket(c: Rung) -> int:
    """0: the target reached; 1: at least 32,768 tokens; 2: at least the 16,384 minimum."""
    if c.meets_target:
        return 0
    return 1 if (c.num_ctx or 0) >= 32_768 else 2


def beaten_rungs(candidates: Sequence[Rung], models: Mapping[str, CatalogModel], catalog: Catalog) -> dict[str, str]:
    """One offer per quantization ladder: the best quality that fits with a Codex-sized context.

    Returns, for every offered rung that is not the ladder's best, why it is not offered (naming the one that
    is). Among the offered quantizations of one model: the better ranking group first (fully fitting at usable
    speed), then a Codex-sized context (32,768 tokens or more), then a full-quality quantization over a 2-3-bit
    one, then the better context bucket, then speed (up to a comfortable 20 tok/s among usable rungs; any speed
    counts for slow or partly offloaded ones), then the most bits per weight. So a MoE whose Q4_K_M misses the
    budget is still offered at a smaller published rung, and a machine with room gets Q8_0 when it stays
    comfortably fast.
    """
    ladders: dict[str, list[Rung]] = {}
    for c in candidates:
        model = models.get(c.model)
        if model is not None and c.offered:
            ladders.setdefault(catalog.ladder_root(model), []).append(c)
    beaten: dict[str, str] = {}
    for members in ladders.values():
        if len(members) < 2:
            continue
        best = min(members, key=lambda c: _rung_key(c, models))
        for c in members:
            if c is not best:
                reason = _rung_reason(c, best, models)
                beaten[c.model] = f"another quantization of the same model is offered: {best.model} ({reason})"
    return beaten


def _rung_key(c: Rung, models: Mapping[str, CatalogModel]) -> tuple:
    tps = c.decode_tps or 0.0
    speed = min(tps, COMFORTABLE_TPS) if c.group == 1 else tps
    codex_sized = context_bucket(c) <= 1
    return (c.group, not codex_sized, c.low_quant, context_bucket(c), -speed, -models[c.model].bits_per_weight)


def _rung_reason(loser: Rung, best: Rung, models: Mapping[str, CatalogModel]) -> str:
    """Why `best` is offered rather than `loser`: the first part of `_rung_key` where it wins."""
    mine, theirs = _rung_key(best, models), _rung_key(loser, models)
    first = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b), len(mine) - 1)
    quant = models[best.model].quantization
    return (
        "fits fully at usable speed" if best.group == 1 else "fits fully",
        f"reaches {best.num_ctx or 0:,} tokens of context",
        f"{quant} keeps more quality and still has a Codex-sized context",
        f"reaches {best.num_ctx or 0:,} tokens of context",
        f"faster: ~{best.decode_tps or 0:.0f} against ~{loser.decode_tps or 0:.0f} tok/s",
        f"{quant}: more bits per weight, better quality, and it fits",
    )[first]

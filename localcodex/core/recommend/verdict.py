"""The verdict on a recommendation: is local Codex on this machine any good, and if not, what to do instead.

A pick is *usable* when its decode and prompt speed reach the usable thresholds (rank.py: 8 tok/s decode,
50 tok/s prompt) and its coding tier is at most `QUALITY_TIER` (tier 5 is the tiny class: it calls tools but
cannot carry an agentic coding task). An installed model the catalog does not rate is judged on speed alone.

When the pick is not usable, the verdict says so first and names the alternatives, in this order:
- a stronger local model that fits fully but runs slower (the best coding tier among those reaching at least
  `SLOW_FLOOR_TPS` decode and reading a 5k-token Codex prompt within `SLOW_PROMPT_SECONDS`), with what
  its speed means for that prompt;
- a remote Ollama on a machine with a GPU (`--host`);
- a hosted model through a provider template (`localcodex provider add`).

`--prefer` (rank.py) changes the trade-off: `speed` ranks the fastest usable model first, `quality` lets a
slower but stronger model (>= `SLOW_FLOOR_TPS`) rank with the usable ones, `balanced` is the default order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

QUALITY_TIER = 4  # coding tier 5 = tiny: tool calls work, agentic coding does not
SLOW_FLOOR_TPS = 2.0  # below this, a model is not worth offering even as "slower but stronger"
CODEX_PROMPT_TOKENS = 5_000  # instructions + tool schemas of one Codex turn
SLOW_PROMPT_SECONDS = 600  # ... and a stronger model must read that prompt within ten minutes
PREFERENCES = ("balanced", "speed", "quality")
PROVIDER_TEMPLATE = "openrouter"  # a shipped template (profiles/); `provider list` shows the others


class Ranked(Protocol):
    """What the verdict reads of a ranked candidate (rank.Candidate has it all, read-only)."""

    @property
    def model(self) -> str: ...
    @property
    def coding_tier(self) -> int | None: ...
    @property
    def decode_tps(self) -> float | None: ...
    @property
    def prompt_tps(self) -> float | None: ...
    @property
    def placement(self) -> str: ...
    @property
    def offered(self) -> bool: ...
    @property
    def usable(self) -> bool: ...


@dataclass(frozen=True)
class Alternative:
    kind: str  # "stronger_local" | "remote_ollama" | "provider"
    summary: str
    command: str
    model: str | None = None


@dataclass(frozen=True)
class Verdict:
    usable: bool
    headline: str  # the first line a person reads
    alternatives: tuple[Alternative, ...] = ()


def quality_ok(c: Ranked) -> bool:
    return c.coding_tier is None or c.coding_tier <= QUALITY_TIER


def judge(pick: Ranked | None, candidates: Sequence[Ranked], usable_tps: float, usable_prompt_tps: float) -> Verdict:
    """Usable or not, in one sentence, with the alternatives when not."""
    speeds = f"{usable_tps:g} tok/s decode and {usable_prompt_tps:g} tok/s prompt"
    if pick is None:
        headline = ("Local Codex cannot run on this machine: no model with tool calling fits at the minimum "
                    "context.")  # fmt: skip
        return Verdict(False, headline, _alternatives(None, candidates))
    if pick.usable and quality_ok(pick):
        tier = f"coding tier {pick.coding_tier}" if pick.coding_tier is not None else "unrated for coding"
        return Verdict(True, f"Usable for Codex here: {pick.model}, ~{pick.decode_tps or 0:.0f} tok/s, {tier}.")
    best = f"best local option: {pick.model} ({_speed(pick)}, {_tier(pick)})"
    if not pick.usable:
        headline = (f"Local Codex on this machine will be poor: no model with working tool calls reaches usable "
                    f"speed ({speeds}); {best}.")  # fmt: skip
    else:
        headline = (f"Local Codex on this machine will be poor: only tiny models (coding tier "
                    f"{pick.coding_tier}) reach usable speed here; {best}.")  # fmt: skip
    return Verdict(False, headline, _alternatives(pick, candidates))


def _alternatives(pick: Ranked | None, candidates: Sequence[Ranked]) -> tuple[Alternative, ...]:
    found: list[Alternative] = []
    stronger = stronger_model(pick, candidates)
    if stronger is not None:
        wait = CODEX_PROMPT_TOKENS / stronger.prompt_tps if stronger.prompt_tps else None
        reading = f"; a {CODEX_PROMPT_TOKENS:,}-token Codex prompt takes ~{_duration(wait)} to read" if wait else ""
        found.append(Alternative(
            "stronger_local",
            f"a slower, stronger model: {stronger.model} ({_tier(stronger)}, {_speed(stronger)}{reading})",
            f"localcodex setup --model {stronger.model}", stronger.model,
        ))  # fmt: skip
    found.append(Alternative(
        "remote_ollama",
        "Ollama on a machine with a GPU or an Apple chip with enough memory, used from here",
        "localcodex setup --host http://GPU-HOST:11434",
    ))  # fmt: skip
    found.append(Alternative(
        "provider",
        "a hosted model through a provider template (`localcodex provider list` shows them)",
        f"localcodex provider add {PROVIDER_TEMPLATE}",
    ))  # fmt: skip
    return tuple(found)


def stronger_model(pick: Ranked | None, candidates: Sequence[Ranked]) -> Ranked | None:
    """The best coding tier among offered models that fit fully and reach SLOW_FLOOR_TPS, stronger than `pick`."""
    floor = pick.coding_tier if pick is not None and pick.coding_tier is not None else 6
    pool = [
        c for c in candidates
        if c.offered and c is not pick and c.placement not in ("partial", "none") and c.coding_tier is not None
        and c.coding_tier < floor and (c.decode_tps or 0) >= SLOW_FLOOR_TPS
        and (c.prompt_tps is None or c.prompt_tps * SLOW_PROMPT_SECONDS >= CODEX_PROMPT_TOKENS)
    ]  # fmt: skip
    if not pool:
        return None
    return min(pool, key=lambda c: (c.coding_tier, -(c.decode_tps or 0)))


def _tier(c: Ranked) -> str:
    return f"coding tier {c.coding_tier}" if c.coding_tier is not None else "unrated for coding"


def _speed(c: Ranked) -> str:
    if c.decode_tps is None:
        return "speed unknown"
    prompt = f", prompt ~{c.prompt_tps:,.0f} tok/s" if c.prompt_tps else ""
    return f"~{c.decode_tps:.1f} tok/s decode{prompt}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"

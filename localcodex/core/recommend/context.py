"""The context to give a model on this machine: the largest that fits (KV cache counted), within what the
model supports, with the batch size pinned when that is what lets it fit. Built on `fit.place`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from localcodex.core.recommend.fit import (
    CONTEXT_STEP,
    DEFAULT_CONTEXT,
    DEFAULT_SETTINGS,
    MIN_CONTEXT,
    Fit,
    FitModel,
    Settings,
    place,
)
from localcodex.domain.machine import Machine


def context_candidates(model: FitModel, ceiling: int | None = None, floor: int = MIN_CONTEXT) -> range:
    """Multiples of CONTEXT_STEP from min(ceiling, trained context) down to `floor`."""
    top = min(ceiling or model.context_length, model.context_length)
    top -= top % CONTEXT_STEP
    return range(top, floor - 1, -CONTEXT_STEP)


def max_context(
    model: FitModel,
    machine: Machine,
    settings: Settings = DEFAULT_SETTINGS,
    *,
    ceiling: int | None = None,
    floor: int = MIN_CONTEXT,
    full_only: bool = True,
) -> Fit | None:
    """The fit at the largest context (multiple of 1,024, <= trained context and `ceiling`) that fits.

    `full_only` requires all of it on GPU/unified memory (or in RAM on a machine without a GPU); otherwise
    partial offload counts too. None when not even `floor` fits.
    """
    for num_ctx in context_candidates(model, ceiling, floor):
        fit = place(model, num_ctx, machine, settings)
        if fit.fits and (fit.full or not full_only):
            return fit
    return None


# Batches to pin, in order, when Ollama's automatic one stops a full fit: 512 (its smallest automatic batch)
# frees up to ~1.5 GiB of compute buffer; 256 halves that again (prompt processing on a CPU hardly notices).
PINNED_BATCHES = (512, 256)


@dataclass(frozen=True)
class ContextChoice:
    """The context a model gets on this machine, and why."""

    target: int
    fit: Fit | None  # None: does not qualify (not even MIN_CONTEXT fits)
    reduced: bool = False  # the target did not fit (or exceeds the trained context) and a smaller one was chosen
    notes: tuple[str, ...] = field(default=())
    num_batch: int | None = None  # set PARAMETER num_batch to this in the variant (None: Ollama's automatic batch)

    @property
    def num_ctx(self) -> int | None:
        return self.fit.need.num_ctx if self.fit else None


def choose_context(
    model: FitModel,
    machine: Machine,
    settings: Settings = DEFAULT_SETTINGS,
    *,
    target: int = DEFAULT_CONTEXT,
    minimum: int = MIN_CONTEXT,
) -> ContextChoice:
    """Fit at `target` if possible (fully), else the largest full fit >= `minimum`, else partial offload.

    Ollama raises the batch to 1,024 / 2,048 tokens for long contexts when nothing pins it, and the compute
    buffer grows with it (up to ~2 GiB). When that is what stops a full fit, the choice pins `num_batch` to
    512, then 256 (`ContextChoice.num_batch`: the variant model must set `PARAMETER num_batch N`), which costs
    some prompt-processing speed and no quality. The order: the target with the automatic batch, then with
    each pinned batch, then the largest context that fits with any (the larger wins; the bigger batch on a tie).
    Partial offload is only tried (at the target, then smaller) when no full placement fits at `minimum`: a
    smaller context on the GPU is faster than the full target half on the CPU.
    """
    notes: list[str] = []
    goal = target
    if model.context_length < target:
        goal = model.context_length
        notes.append(f"trained context is {model.context_length:,} tokens, below the {target:,} asked")
    if goal < minimum:
        return ContextChoice(target, None, True, (*notes, f"trained context is below the {minimum:,} minimum"))
    options: list[tuple[Settings, int | None]] = [(settings, None)]
    if settings.num_batch is None:
        options += [(replace(settings, num_batch=batch), batch) for batch in PINNED_BATCHES]
    for option, pinned in options:
        fit = place(model, goal, machine, option)
        if fit.fits and fit.full:
            return ContextChoice(target, fit, goal != target, (*notes, *_pin_note(fit, pinned)), pinned)
    found = [(best, pinned) for option, pinned in options
             if (best := max_context(model, machine, option, ceiling=goal, floor=minimum)) is not None]  # fmt: skip
    if found:
        best, pinned = max(found, key=lambda item: (item[0].need.num_ctx, item[1] or 1 << 30))
        notes.append(f"{goal:,} tokens do not fit fully; {best.need.num_ctx:,} is the largest that does")
        return ContextChoice(target, best, True, (*notes, *_pin_note(best, pinned)), pinned)
    fit = place(model, goal, machine, settings)
    partial = fit if fit.fits else max_context(model, machine, settings, ceiling=goal, floor=minimum, full_only=False)
    if partial is not None:
        return ContextChoice(target, partial, partial.need.num_ctx != target, tuple(notes))
    return ContextChoice(target, None, True, (*notes, fit.reason))


def _pin_note(fit: Fit, pinned: int | None) -> tuple[str, ...]:
    if pinned is None:
        return ()
    return (f"fits only with num_batch {pinned} pinned (Ollama's automatic batch would need a bigger compute "
            "buffer): the variant must set PARAMETER num_batch " + str(pinned),)

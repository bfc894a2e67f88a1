"""What `setup` remembers between runs (`setup-state.json` in the data folder, one entry per Ollama host).

* proofs, keyed by what they depend on: `verified` (the variant loaded with its context), `checked` (the
  `/v1` probes), `benched` (the speed);
* `choices`: what the user chose explicitly (`--model`, `--context`, `--vram`, `--ram`, `--gpu none`), so a
  plain re-run keeps them;
* `result`: what the last successful run set up (base model, context, variant, profile) and the facts it was
  decided on (hardware fingerprint, Ollama version). A plain re-run keeps that result as long as those facts
  hold; when one changed it says which, and decides again;
* `variants`: the context variants setup created, so it can replace its own old one and `models prune` can
  tell them from the user's models.

The file itself is `adapters.setup_state.SetupState` (reached through `live.setup_state()`); this module holds
the rules for the choices. A missing or unreadable file only costs re-proving.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CHOICE_KEYS = ("model", "context", "vram", "ram", "gpu_none")


@dataclass(frozen=True)
class Choices:
    """Explicit choices: given now (they win) merged with those remembered from earlier runs."""

    model: str | None = None
    context: int | None = None
    vram: int | None = None
    ram: int | None = None
    gpu_none: bool = False
    remembered: tuple[str, ...] = ()  # the options taken from an earlier run, as a user would type them

    def as_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CHOICE_KEYS if getattr(self, k) not in (None, False)}


def merge_choices(given: Mapping[str, Any], state: Mapping[str, Any], forget: Iterable[str] = ()) -> Choices:
    """`given` (this run's options, None when not given) over the choices remembered in `state`, except those
    in `forget` (CHOICE_KEYS the user reset with `auto`: detect or recommend again).

    A new --model drops the remembered --context (a context is chosen for one model); the hardware description
    (--vram/--ram/--gpu) stays until it is given again; `--gpu none` and `--vram` replace each other.

    >>> merge_choices({"model": None}, {"choices": {"gpu_none": True, "vram": 8}}, forget=("gpu_none",)).remembered
    ('--vram 8',)
    >>> merge_choices({"gpu_none": True}, {"choices": {"vram": 8}}).as_state()
    {'gpu_none': True}

    >>> merge_choices({"model": None}, {"choices": {"model": "a:1b", "context": 32768, "vram": 8}}).remembered
    ('--model a:1b', '--context 32768', '--vram 8')
    >>> c = merge_choices({"model": "b:2b"}, {"choices": {"model": "a:1b", "context": 32768}})
    >>> (c.model, c.context, c.remembered)
    ('b:2b', None, ())
    """
    kept = state.get("choices")
    old: dict[str, Any] = kept if isinstance(kept, dict) else {}
    values: dict[str, Any] = {}
    remembered: list[str] = []
    new_model = given.get("model") is not None and given.get("model") != old.get("model")
    dropped = set(forget)
    if new_model or "model" in dropped:
        dropped.add("context")
    if given.get("gpu_none"):
        dropped.add("vram")
    if given.get("vram") is not None:
        dropped.add("gpu_none")
    for key in CHOICE_KEYS:
        if given.get(key) not in (None, False):
            values[key] = given[key]
        elif old.get(key) not in (None, False) and key not in dropped:
            values[key] = old[key]
            remembered.append(_flag(key, old[key]))
    return Choices(**values, remembered=tuple(remembered))


def _flag(key: str, value: Any) -> str:
    if key == "gpu_none":
        return "--gpu none"
    if key in ("vram", "ram"):
        number = int(value)
        return f"--{key} {number // 2**30}GiB" if number % 2**30 == 0 else f"--{key} {number}"
    return f"--{key} {value}"

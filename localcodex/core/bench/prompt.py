"""Benchmark prompts of a chosen size in tokens, on any model, and a nonce so no run reuses another's cache.

Why it is built this way:

* Tokenizers differ (a 5-digit number is 1 token for one model and 5 for another), so the size of a prompt
  cannot be known from its text. The prompt is a short fixed part plus N copies of a code-like unit; the
  server's own `prompt_eval_count` for the short prompt (B) and for the short prompt plus K units (C) give the
  cost of one unit on this model, (C - B) / K, and N follows for any target size. Units are zero-padded so
  every one has the same shape and costs the same number of tokens.
* Ollama keeps the last prompt of each slot in its cache and evaluates only what differs; two runs of the same
  long prompt would show a prefill of a few tokens and an absurd prompt rate. Every request therefore starts
  with a fresh random nonce, so the whole prompt after the chat template's fixed prefix is evaluated each time.
  The fixed prefix (a template's default system message) may still be cached: then `prompt_eval_count` is
  that much smaller, and the reported prompt rate still divides the tokens evaluated by the time it took.
* The instruction asks for a long, plain enumeration so a model at temperature 0 keeps generating until
  `num_predict` (the decode measurement needs that many tokens; `done_reason` says when a model stopped early).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

SHORT = 0  # a target of 0 tokens means "the short prompt as it is"
_CHARS_PER_TOKEN_GUESS = 3.5  # only sizes the calibration prompt; never used for the measured prompts
CALIBRATION_TOKENS = 2048

INSTRUCTION = (
    "Task: ignore any code above. Count upward from one in English words, one number per line, "
    "and do not stop until you reach one thousand."
)


def nonce() -> str:
    return secrets.token_hex(4)


def unit(i: int) -> str:
    """One block of filler: a small, valid Python function with fixed-width numbers."""
    return (
        f"def stage_{i:05d}(values: list[int]) -> int:\n"
        f'    """Weighted total for stage {i:05d} of the nightly report."""\n'
        f"    return sum(v * {i % 7 + 1} for v in values) + {i:05d}\n\n"
    )


def build(units: int, tag: str) -> str:
    """The prompt: nonce first (defeats the prefix cache), then `units` filler blocks, then the instruction."""
    body = "".join(unit(i) for i in range(units))
    head = f"Request {tag}.\n"
    return f"{head}{body}{INSTRUCTION}" if units else f"{head}{INSTRUCTION}"


def calibration_units(max_target: int) -> int:
    """How many units the calibration prompt holds: about min(max_target, 2048) tokens by a rough guess."""
    tokens = min(max_target, CALIBRATION_TOKENS)
    per_unit = len(unit(0)) / _CHARS_PER_TOKEN_GUESS
    return max(4, math.ceil(tokens / per_unit))


@dataclass(frozen=True)
class Calibration:
    """Tokens the server counts for the short prompt (`base`) and for each filler unit (`per_unit`)."""

    base: int
    per_unit: float | None = None

    def units_for(self, target: int) -> int:
        """
        >>> Calibration(40, 50.0).units_for(8192)
        163
        >>> Calibration(40, 50.0).units_for(SHORT), Calibration(40, None).units_for(8192)
        (0, 0)
        """
        if target <= self.base or not self.per_unit:
            return 0
        return max(0, round((target - self.base) / self.per_unit))


def calibrate(base: int, with_units: int, units: int) -> Calibration:
    """From two counts of the same prompt with 0 and `units` filler units.

    >>> calibrate(40, 5040, 100)
    Calibration(base=40, per_unit=50.0)
    """
    per_unit = (with_units - base) / units if units and with_units > base else None
    return Calibration(base=base, per_unit=per_unit)

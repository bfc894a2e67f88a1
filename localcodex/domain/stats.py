"""Small statistics for benchmark runs: median and spread, and the rule that stops a series early."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_RUNS_FOR_EARLY_STOP = 3
TIGHT_SPREAD = 0.02  # (max - min) / median below this is "tight": more runs would not change the median
MIN_RUNS_FOR_PERCENTILES = 5


@dataclass(frozen=True)
class Spread:
    """Median and spread of one measure over the successful runs of a series.

    p10/p90 are interpolated percentiles (inclusive method) and exist only from 5 values on; with fewer,
    they would be nothing but the min and max in disguise.
    """

    n: int
    median: float
    min: float
    max: float
    p10: float | None = None
    p90: float | None = None

    @property
    def relative_range(self) -> float:
        return (self.max - self.min) / self.median if self.median else float("inf")

    @property
    def low(self) -> float:
        return self.p10 if self.p10 is not None else self.min

    @property
    def high(self) -> float:
        return self.p90 if self.p90 is not None else self.max


def spread(values: Sequence[float | None]) -> Spread | None:
    """
    >>> spread([10.0, 12.0, 11.0])
    Spread(n=3, median=11.0, min=10.0, max=12.0, p10=None, p90=None)
    >>> s = spread([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]); (s.median, s.p10, s.p90)
    (6, 2.0, 10.0)
    >>> spread([None]) is None
    True
    """
    clean = sorted(v for v in values if v is not None)
    if not clean:
        return None
    p10 = p90 = None
    if len(clean) >= MIN_RUNS_FOR_PERCENTILES:
        cuts = statistics.quantiles(clean, n=10, method="inclusive")
        p10, p90 = cuts[0], cuts[-1]
    return Spread(len(clean), statistics.median(clean), clean[0], clean[-1], p10, p90)


def is_tight(values: Sequence[float | None], *, tolerance: float = TIGHT_SPREAD, floor: float = 0.0) -> bool:
    """True once at least 3 values agree: max - min < tolerance x median, or below `floor` (absolute; a
    time of a few ms cannot be known to 2 %).

    >>> is_tight([100.0, 101.0])
    False
    >>> is_tight([100.0, 101.0, 100.5])
    True
    >>> is_tight([100.0, 103.0, 100.5])
    False
    >>> is_tight([0.021, 0.024, 0.022], floor=0.005), is_tight([0.021, 0.029, 0.022], floor=0.005)
    (True, False)
    """
    s = spread(values)
    if s is None or s.n < MIN_RUNS_FOR_EARLY_STOP:
        return False
    return s.relative_range < tolerance or s.max - s.min < floor

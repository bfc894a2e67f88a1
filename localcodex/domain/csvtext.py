"""CSV text for exports (receipts, eval reports): one writer, the same quoting everywhere."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV; floats keep full precision, None is an empty cell.

    >>> print(csv_text(["a", "b"], [(1, None), (0.5, "x,y")]), end="")
    a,b
    1,
    0.5,"x,y"
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()

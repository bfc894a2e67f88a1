"""The data parts of the `--json` envelope that every layer may produce: one error item, and the rule that turns
results (dataclasses, enums, paths, dates) into plain JSON values. The envelope itself is render/output.py.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePath
from typing import Any


@dataclass(frozen=True)
class ErrorItem:
    code: str
    message: str
    hint: str | None = None



def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, paths, tuples and dates become plain JSON values (recursively)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value

"""Timestamps in Go's RFC3339Nano form (trailing zeros of the fraction trimmed)."""

from __future__ import annotations

from datetime import datetime, timezone


def _offset(moment: datetime) -> str:
    offset = moment.strftime("%z")
    if offset in ("", "+0000"):
        return "Z"
    return f"{offset[:3]}:{offset[3:]}"


def go_time(moment: datetime, local: bool = False) -> str:
    """``created_at`` style (UTC, ``Z``) or ``expires_at`` style (local offset)."""
    moment = moment.astimezone() if local else moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + _offset(moment)


def go_time_ns(epoch_ns: int) -> str:
    """A file time with nanoseconds and the local offset (``modified_at``)."""
    moment = datetime.fromtimestamp(epoch_ns // 1_000_000_000, timezone.utc).astimezone()
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = epoch_ns % 1_000_000_000
    if fraction:
        text += f".{fraction:09d}".rstrip("0")
    return text + _offset(moment)


def now_utc() -> str:
    return go_time(datetime.now(timezone.utc))

"""Byte sizes as people type them (`--vram 24GiB`) and as core explanations print them.

Binary units are the default for a bare letter (`24G` = 24 GiB, as `free -g`, Docker's `--memory 24g` and
Ollama's own logs count memory); `GB`, `MB`, `TB` spelled out are decimal (a "16 GB" card box means 10^9 bytes).
"""

from __future__ import annotations

import re

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4

_UNITS = {
    "": 1,
    "b": 1,
    "k": KiB, "kib": KiB, "ki": KiB, "kb": 1000,
    "m": MiB, "mib": MiB, "mi": MiB, "mb": 1000**2,
    "g": GiB, "gib": GiB, "gi": GiB, "gb": 1000**3,
    "t": TiB, "tib": TiB, "ti": TiB, "tb": 1000**4,
}  # fmt: skip

_SIZE_RE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes from a size such as `24GiB`, `24G`, `16000MiB`, `8GB` (decimal) or `1.5 GiB`.

    >>> parse_size("24GiB") == 24 * GiB
    True
    >>> parse_size("24G") == 24 * GiB
    True
    >>> parse_size("16000MiB") == 16000 * MiB
    True
    >>> parse_size("8GB")
    8000000000
    >>> parse_size("1.5 gib") == 3 * GiB // 2
    True
    >>> parse_size("4096")
    4096
    >>> parse_size("24 apples")
    Traceback (most recent call last):
    ...
    ValueError: '24 apples' is not a size: use a number with a unit, e.g. 24GiB, 24G, 16000MiB or 8GB
    >>> parse_size("0G")
    Traceback (most recent call last):
    ...
    ValueError: '0G' is not a size: it must be more than zero
    """
    match = _SIZE_RE.match(text or "")
    unit = match.group("unit").lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: use a number with a unit, e.g. 24GiB, 24G, 16000MiB or 8GB")
    value = int(float(match.group("num")) * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"{text!r} is not a size: it must be more than zero")
    return value


def format_bytes(n: int | float | None, *, decimal: bool = False) -> str:
    """The one byte formatter: binary units (GiB) by default, decimal (GB) for download sizes.

    Three significant figures: one decimal below 100 of a unit, whole numbers from 100 up.

    >>> format_bytes(7 * GiB + 200 * MiB)
    '7.2 GiB'
    >>> format_bytes(17 * GiB)
    '17.0 GiB'
    >>> format_bytes(457 * MiB)
    '457 MiB'
    >>> format_bytes(0)
    '0 B'
    >>> format_bytes(512)
    '512 B'
    >>> format_bytes(None)
    'unknown'
    >>> format_bytes(-2 * GiB)
    '-2.0 GiB'
    >>> format_bytes(17_000_000_000, decimal=True)
    '17.0 GB'
    >>> format_bytes(345_600_000, decimal=True), format_bytes(98_400_000, decimal=True)
    ('346 MB', '98.4 MB')
    >>> format_bytes(1536)
    '1.5 KiB'
    >>> format_bytes(3 * TiB)
    '3.0 TiB'
    """
    if n is None:
        return "unknown"
    size = abs(float(n))
    sign = "-" if n < 0 else ""
    base = 1000 if decimal else 1024
    names = ("B", "KB", "MB", "GB", "TB") if decimal else ("B", "KiB", "MiB", "GiB", "TiB")
    power = 0
    while power < len(names) - 1 and size >= base ** (power + 1):
        power += 1
    if power == 0:
        return f"{sign}{int(size)} B"
    value = size / base**power
    return f"{sign}{value:.1f} {names[power]}" if round(value, 1) < 100 else f"{sign}{value:.0f} {names[power]}"

"""Hardware probes: small functions that read one kind of fact about a machine.

Each takes its inputs as parameters (a filesystem `root`, a command `run`ner, an `env` mapping, a
`SystemInfo`, a `Native` for library calls) so tests replay recorded machines (tests/fixtures/machines).
Probes never raise for an odd machine: they return "unknown" (None) and add a note saying why.
`localcodex.core.detect.detect` puts them together.
"""

from localcodex.adapters.probes.base import (
    CompletedLike,
    Runner,
    RunResult,
    SystemInfo,
    current_system,
    default_runner,
)
from localcodex.adapters.probes.native import MemorySnapshot, Native, NvmlDevice, NvmlReport

__all__ = [
    "CompletedLike",
    "MemorySnapshot",
    "Native",
    "NvmlDevice",
    "NvmlReport",
    "RunResult",
    "Runner",
    "SystemInfo",
    "current_system",
    "default_runner",
]

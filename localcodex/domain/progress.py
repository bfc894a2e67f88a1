"""Progress events of the long steps (pull, import, export), made by core and shown by render/progress.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Phase = Literal["manifest", "layer", "verify", "write", "cleanup", "success", "status"]


@dataclass(frozen=True)
class PullPlan:
    """Sent once, before the download starts: what will be fetched and whether the disk was checked."""

    model: str
    download_bytes: int | None
    size_source: str  # "given" | "catalog" | "registry" | "unknown"
    disk: DiskCheck


@dataclass(frozen=True)
class PullEvent:
    """One status line of Ollama's pull stream, typed. `digest/total/completed` only for `layer`."""

    phase: Phase
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


@dataclass(frozen=True)
class DiskCheck:
    checked: bool
    path: str | None
    free: int | None
    needed: int | None
    reason: str  # one line for people: the figures, or why the disk could not be checked


@dataclass(frozen=True)
class TransferEvent:
    """Progress of a long step: `done` of `total` bytes (or items) in `phase`."""

    phase: Literal["hash", "upload", "verify", "write", "create", "check"]
    done: int
    total: int | None
    item: str = ""


TransferCallback = Callable[[TransferEvent], None]

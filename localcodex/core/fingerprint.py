"""A machine fingerprint for receipts: which hardware a measurement was taken on, without personal data.

Receipts are compared across runs, models and machines, and `recommend` trusts a measured speed only on the
machine that measured it; so the fingerprint must stay the same across reboots and driver updates, and
change when the hardware does. It keeps only what decides speed — OS, CPU architecture and model, core
counts, RAM rounded to whole GiB, each GPU's name and memory rounded to whole GiB — and never a hostname,
a user name, a path, a serial number or a free-memory figure (those vary, or identify a person).

`hash` is the first 16 hex digits of SHA-256 over the canonical JSON of those facts; `label` is the same
facts in one line a person can read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from localcodex.domain.machine import Machine
from localcodex.domain.units import GiB

FINGERPRINT_VERSION = 1


@dataclass(frozen=True)
class Fingerprint:
    hash: str
    label: str
    facts: dict[str, Any]


def _gib(n: int | None) -> int | None:
    """Whole GiB, rounded to nearest: kernels and firmware report a few MiB more or less across boots."""
    return None if n is None else max(0, round(n / GiB))


def machine_facts(machine: Machine) -> dict[str, Any]:
    """The speed-relevant, non-personal facts about a machine, in a canonical order."""
    gpus = sorted(
        ({"name": g.name.strip(), "vendor": g.vendor, "memory_gib": _gib(g.memory_total)} for g in machine.gpus),
        key=lambda g: (g["name"], g["memory_gib"] or 0),
    )
    return {
        "v": FINGERPRINT_VERSION,
        "os": machine.os,
        "arch": machine.arch,
        "cpu": (machine.cpu_model or "").strip() or None,
        "cores_physical": machine.cores_physical,
        "cores_logical": machine.cores_logical,
        "ram_gib": _gib(machine.ram_total),
        "gpus": gpus,
    }


def label_of(facts: dict[str, Any]) -> str:
    """One readable line.

    >>> label_of({"os": "linux", "arch": "x86_64", "cpu": "AMD Ryzen 9", "cores_physical": 8,
    ...           "cores_logical": 16, "ram_gib": 64, "gpus": [{"name": "RTX 4090", "memory_gib": 24}]})
    'linux x86_64 · AMD Ryzen 9 · 8c/16t · 64 GiB RAM · RTX 4090 24 GiB'
    """
    parts = [f"{facts['os']} {facts['arch']}"]
    if facts.get("cpu"):
        parts.append(str(facts["cpu"]))
    if facts.get("cores_physical") or facts.get("cores_logical"):
        parts.append(f"{facts.get('cores_physical') or '?'}c/{facts.get('cores_logical') or '?'}t")
    if facts.get("ram_gib") is not None:
        parts.append(f"{facts['ram_gib']} GiB RAM")
    for gpu in facts.get("gpus") or ():
        size = f" {gpu['memory_gib']} GiB" if gpu.get("memory_gib") else ""
        parts.append(f"{gpu['name']}{size}")
    return " · ".join(parts)


def fingerprint(machine: Machine) -> Fingerprint:
    facts = machine_facts(machine)
    canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return Fingerprint(hash=digest, label=label_of(facts), facts=facts)


def this_machine() -> Machine:
    """The machine we run on, as `detect` sees it (GPUs included), without asking Ollama anything.

    Always this machine's own hardware: a benchmark of a server elsewhere is recorded with it too, and marked
    as remote in the receipts, so it never passes for a measurement of this hardware.
    """
    from localcodex.core.detect import detect

    return detect(query_ollama=False, ollama_host="127.0.0.1")

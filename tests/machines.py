"""Recorded machines for tests: `load_machine("rtx4070-laptop")` runs the real `detect` against a fixture.

Each folder under tests/fixtures/machines/<name>/ holds
  root/          a fake filesystem (the /proc, /sys files the probes read),
  commands.json  recorded command outputs, keyed by the shell-quoted argv: {"returncode", "stdout", "stderr"},
  machine.json   the description, public sources the values follow, the system (os, arch), the environment,
                 and the facts that come from library calls ("native": psutil memory, disk usage, ...).

The runner replays commands.json: a tool with no recording is absent (None, nothing runs); asking a recorded
tool for an argv that was not recorded fails the test, so probes cannot drift silently.

Machines (what the recommend tests use is marked *):
  rtx4070-laptop *   8 GB RTX 4070 Laptop + Intel iGPU (Optimus), 32 GB, Linux
  rtx4090 *          one 24 GB RTX 4090, 64 GB, Linux
  2x3090 *           two 24 GB RTX 3090, 128 GB, Linux
  rx7900xtx          24 GB RX 7900 XTX + Raphael iGPU (not used), 64 GB, Linux
  strix-halo-128     Ryzen AI Max+ 395 (gfx1151), 128 GB unified through GTT, Linux
  m3pro-36 *         Apple M3 Pro, 36 GB (Metal working set 27 GiB)
  m3max-128 *        Apple M3 Max, 128 GB (Metal working set 96 GiB)
  m4max-128-wired    Apple M4 Max, 128 GB with iogpu.wired_limit_mb=114688 (112 GiB)
  wsl2-rtx4090       WSL2 with an RTX 4090; nvidia-smi only in /usr/lib/wsl/lib
  container-4g *     Docker container with a 4 GiB cgroup limit on a 64 GB host, no GPU
  cpu-16g *          16 GB laptop, Radeon 780M iGPU that Ollama does not use: CPU only
  intel-igpu-laptop  Core Ultra with Intel Arc (integrated) graphics, 32 GB: CPU only
  vm-no-gpu          cloud VM with only a QEMU virtual display, 32 GB
  dgx-spark          NVIDIA GB10, 128 GB unified (nvidia-smi memory is [N/A])
  windows-16g        Windows 11, RX 9060 XT 16 GB (WMI AdapterRAM would say 4 GB) + Radeon iGPU
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

from localcodex.adapters.probes.base import RunResult, SystemInfo
from localcodex.adapters.probes.native import MemorySnapshot, Native, NvmlReport
from localcodex.core.detect import compute_budget, detect, gpu_overhead
from localcodex.domain.machine import LoadedModel, Machine, OllamaState

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "machines"
MACHINES = tuple(sorted(p.name for p in FIXTURES.iterdir() if (p / "machine.json").exists()))


class UnexpectedCommand(AssertionError):
    pass


class FixtureRunner:
    """Replays commands.json. Records every argv it was asked to run in `calls`."""

    def __init__(self, commands: dict[str, dict[str, Any]]) -> None:
        self.commands = commands
        self.tools = {shlex.split(key)[0] for key in commands}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout: float) -> RunResult | None:
        self.calls.append(list(argv))
        if argv[0] not in self.tools:
            return None  # not installed on the recorded machine
        recorded = self.commands.get(shlex.join(argv))
        if recorded is None:
            raise UnexpectedCommand(f"no recording for {shlex.join(argv)!r}")
        return RunResult(recorded["returncode"], recorded.get("stdout", ""), recorded.get("stderr", ""))


class FixtureNative(Native):
    """The library-backed facts of a recorded machine (never the real one)."""

    def __init__(self, facts: dict[str, Any]) -> None:
        self.facts = facts

    def memory(self) -> MemorySnapshot | None:
        m = self.facts.get("memory")
        return MemorySnapshot(**m) if m else None

    def cpu_counts(self) -> tuple[int | None, int | None]:
        counts = self.facts.get("cpu_counts") or (None, None)
        return counts[0], counts[1]

    def disk_usage(self, path: Path) -> tuple[int, int] | None:
        d = self.facts.get("disk")
        return (d["total"], d["free"]) if d else None

    def windows_cpu_features(self) -> tuple[str, ...] | None:
        f = self.facts.get("windows_cpu_features")
        return tuple(f) if f is not None else None

    def nvml(self) -> NvmlReport | None:
        return None  # recordings are of nvidia-smi; NVML is not replayed


@dataclasses.dataclass
class Fixture:
    name: str
    root: Path
    runner: FixtureRunner
    native: FixtureNative
    system: SystemInfo
    env: dict[str, str]
    description: str


def fixture(name: str) -> Fixture:
    folder = FIXTURES / name
    doc = json.loads((folder / "machine.json").read_text())
    commands = json.loads((folder / "commands.json").read_text())
    return Fixture(
        name=name,
        root=folder / "root",
        runner=FixtureRunner(commands),
        native=FixtureNative(doc.get("native", {})),
        system=SystemInfo(**doc["system"]),
        env=dict(doc.get("env", {})),
        description=doc.get("description", ""),
    )


def load_machine(
    name: str,
    *,
    env: dict[str, str] | None = None,
    loaded: tuple[LoadedModel, ...] | list[LoadedModel] = (),
    **kw: Any,
) -> Machine:
    """`detect` on a recorded machine, without asking any Ollama server (`query_ollama=False`).

    `env` adds to the machine's recorded environment (e.g. {"OLLAMA_GPU_OVERHEAD": "1073741824"});
    `loaded` pretends Ollama has these models loaded (as /api/ps would say), and the budget subtracts them;
    other keywords go to `detect` (e.g. `overrides=Overrides(vram=...)`).
    """
    fx = fixture(name)
    full_env = {**fx.env, **(env or {})}
    kw.setdefault("query_ollama", False)
    machine = detect(root=fx.root, run=fx.runner, env=full_env, system=fx.system, native=fx.native, **kw)
    if loaded:
        state = OllamaState(host="http://127.0.0.1:11434", reachable=True, version="0.32.15", loaded=tuple(loaded))
        machine = dataclasses.replace(machine, ollama=state)
        machine = dataclasses.replace(machine, budget=compute_budget(machine, gpu_overhead=gpu_overhead(full_env)[0]))
    return machine

"""What `detect` finds out about a machine: the typed result every later step reads.

These are plain frozen dataclasses so that `recommend`, `doctor`, `bench` and `setup` can be tested
with hand-built machines (see tests/fixtures/machines) without running any probe.
All memory figures are bytes; `None` means "could not be known", never zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GPU:
    index: int
    vendor: str  # "nvidia" | "amd" | "apple" | "intel" | "other"
    name: str
    memory_total: int | None
    memory_free: int | None
    backend: str  # "cuda" | "rocm" | "metal" | "vulkan" | "sycl" | "unknown"
    integrated: bool = False
    unified_memory: bool = False  # shares system RAM (Apple Silicon, APUs, GB10/Jetson)
    used_by_ollama: bool = True  # Ollama drops most iGPUs; see ollama-api fact sheet section 4.4
    driver: str | None = None
    compute: str | None = None  # e.g. CUDA compute capability "8.9", gfx target "gfx1151"
    source: str = "unknown"  # which probe produced it: "nvml", "nvidia-smi", "sysfs", "sysctl", "override", ...
    notes: tuple[str, ...] = ()
    pci_bus: str | None = None  # "0000:01:00.0" where known (Linux sysfs, NVML, nvidia-smi)


@dataclass(frozen=True)
class Disk:
    path: str  # the folder Ollama stores models in (OLLAMA_MODELS or the platform default)
    total: int | None
    free: int | None
    source: str = "statvfs"


@dataclass(frozen=True)
class LoadedModel:
    """One entry of Ollama's `/api/ps`: a model holding memory right now."""

    name: str
    size: int
    size_vram: int
    context_length: int | None = None


@dataclass(frozen=True)
class OllamaState:
    host: str
    reachable: bool
    version: str | None = None
    loaded: tuple[LoadedModel, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Budget:
    """The bytes a model may use on this machine.

    `gpu` has one entry per GPU Ollama would use (same order as Machine.gpus filtered by used_by_ollama);
    `ram` is what may hold CPU-resident layers. `explanation` is one line a user can read.
    """

    gpu: tuple[int, ...]
    ram: int
    explanation: str
    unified: bool = False  # GPU memory and RAM are the same pool (Apple Silicon, APUs): never add them up
    details: tuple[str, ...] = ()  # the explanation, one entry per GPU and one for RAM (for tables)

    @property
    def gpu_total(self) -> int:
        return sum(self.gpu)


@dataclass(frozen=True)
class Machine:
    os: str  # "linux" | "darwin" | "windows"
    arch: str  # "x86_64" | "arm64" | ...
    cpu_model: str | None
    cores_physical: int | None
    cores_logical: int | None
    simd: tuple[str, ...]  # subset of ("avx2", "avx512", "neon", ...)
    ram_total: int
    ram_available: int
    swap_total: int | None = None
    swap_free: int | None = None
    cgroup_limit: int | None = None  # container memory limit; wins over RAM when smaller
    wsl: bool = False
    container: bool = False
    gpus: tuple[GPU, ...] = ()
    disk: Disk | None = None
    ollama: OllamaState | None = None
    budget: Budget | None = None
    overrides: tuple[str, ...] = ()  # e.g. ("vram=24GiB (--vram)",)
    notes: tuple[str, ...] = field(default=())
    remote: bool = False  # hardware belongs to a remote Ollama host: figures come from the server only
    cgroup_used: int | None = None  # bytes the container's cgroup holds now (reclaimable page cache excluded)
    container_kind: str | None = None  # "docker", "podman", "kubernetes", ... when `container`
    os_version: str | None = None  # "Ubuntu 24.04.1 LTS", "macOS 15.1", "Windows 10.0.26100"

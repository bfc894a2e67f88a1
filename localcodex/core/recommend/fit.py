"""Will a model fit on this machine, where, and with how much context.

The memory one loaded model needs (bytes), following what `llama-server` allocates (it runs every GGML model
since Ollama v0.30; fact sheet `ollama-api.md` §4.3):

    need = weights + kv_cache + compute + reserve                 (on each device that holds a part)

weights
    The size of the model's GGUF as downloaded (`download_bytes` in the catalog, `size` in `/api/tags` for
    installed models). A GGUF is its tensors plus a few MB of metadata, and Ollama's vision models carry
    their projector inside the same download, so nothing is added for it. Counted in full on the device:
    llama.cpp keeps the token-embedding matrix in host memory, so this errs high by vocab x embedding x
    ~0.6 B (0.3-0.7 GB for current models) - that is part of our margin, not a bug.
kv_cache
    `model.kv_cache_bytes(num_ctx, cache_type, parallel, ubatch=batch)` from the catalog: full-attention
    layers x num_ctx cells, sliding-window layers x their window, the fixed f32 state of linear-attention /
    Mamba layers, all times the parallel slots. `cache_type` is OLLAMA_KV_CACHE_TYPE (f16 default, q8_0,
    q4_0); a quantized cache only takes effect with flash attention (llama.cpp needs it for a quantized V
    cache, and Ollama before v0.30 ignored the variable without it), so with flash attention off the cache
    is counted as f16. `parallel` is OLLAMA_NUM_PARALLEL (default 1 since v0.10), forced to 1 for the
    architectures Ollama lists (qwen35, qwen35moe, qwen3next, qwen3vl*, mllama, lfm2*, nemotron_h*).
compute
    llama.cpp's compute (graph) buffer for one micro-batch of `b` tokens, f32:
        compute = 4 x b x (vocab + 4 x embedding_length)
    i.e. the logits of the batch plus a few activation rows (llama.cpp reserves the worst-case graph where
    every token of the batch produces logits). With flash attention off the attention scores are
    materialized too: + 4 x b x num_ctx x head_count. `b` is Ollama's automatic batch (§4.3): 512 up to
    4,096 tokens of context, 1,024 above, 2,048 above 32,768 - stepped down when Ollama's pre-flight
    estimate (file size + its KV formula) exceeds 75% (1,024) or 60% (2,048) of the available memory.
    Check: qwen3.5:27b at b = 2,048 gives 4 x 2,048 x (248,320 + 20,480) = 2.05 GiB, Ollama's own
    surcharge for that batch is +2 GiB; at b = 1,024, 1.03 GiB against its +768 MiB.
reserve
    Per GPU: llama.cpp's fit margin (`--fit-target`, 1,024 MiB per device by default): since v0.30
    llama.cpp decides the offload itself and leaves that much free on every device it uses. On the CPU:
    256 MiB for the llama-server process itself.

What the budget means: `Budget.gpu[i]` is what GPU i can give a model and `Budget.ram` what RAM can give,
as detect computes them: free memory (capped by what loaded models hold; for unified memory the Metal
working set, capped by available RAM) *minus* Ollama's own per-GPU minimum (`MinimumMemory()`: 457 MiB
CUDA/ROCm/Vulkan, 512 MiB Metal) and OLLAMA_GPU_OVERHEAD, and for RAM minus a margin for the OS and
everything else (1 GiB + 10%). Those are not subtracted again here; the reserve above is, once per device
that holds part of the model. When a Machine has no budget (hand-built), `budget_of` derives one the same way.

Placement, tried in this order:
    unified    Apple Silicon / APU: one pool. need <= Budget.gpu[0]. GPU memory and RAM are never added.
    gpu        all of it on one GPU (the one with the most free memory), as Ollama tries first.
    multi_gpu  layers split across GPUs in proportion to each card's room; every card pays its own reserve
               and compute buffer and loses up to one layer to rounding; budgets are never pooled naively.
    partial    what fits on the GPU(s), the rest (weights and KV of the CPU layers, plus a compute buffer)
               in RAM; slow, and the fraction on the GPU is reported. On unified memory the total must fit
               in RAM (the same memory), not GPU + RAM.
    cpu        everything in RAM (CPU-only machines, or a GPU too small for even one layer).
    none       does not fit.

Context: candidates are multiples of 1,024 tokens (`CONTEXT_STEP`), capped by the model's trained context.
`max_context` walks down from the cap because the need is not monotonic in the context (the automatic batch,
hence the compute buffer, jumps at 4,096 and 32,768 tokens).

How this compares with Ollama's own figures (tests/test_fit.py checks each):
- Ollama's pre-flight admission estimate is `file size + 2 x block_count x head_count_kv(min) x
  (embedding / heads) x ctx x 2`, with no compute buffer and no reserve. For plain GQA models (llama3.1:8b,
  qwen2.5-coder:7b) its KV equals ours, so ours is higher by exactly the compute buffer. It over-counts
  hybrid models (gemma3:27b: all 62 layers as global) and under-counts models whose head width is not
  embedding / heads (qwen3-coder:30b: 128 against 64, half the real KV).
- Ollama's docs give qwen3.5:27b "~18 GB VRAM"; ours at Ollama's 4,096 default context is 17.0 GB weights
  + 268 MB KV + 157 MB recurrent state + 550 MB compute = 17.98 GB before the reserve.
- Ollama's docs show `gemma4:latest` at 9.6 GB in `ollama ps` with 131,072 tokens of context. Ours is
  14.1 GB: the whole 9.6 GB file (its vision/audio encoders and per-layer embeddings included, which that
  report does not count as loaded), 2.25 GB of KV (4 full-attention layers) and a 2.23 GB compute buffer
  for the 2,048-token batch. We err high there, never low.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from localcodex.domain.machine import GPU, Budget, Machine
from localcodex.domain.units import GiB
from localcodex.domain.urls import parse_version

KiB = 1024
MiB = 1024**2

DEFAULT_CONTEXT = 65_536  # what Codex needs to work comfortably (Ollama's docs: >= 64k for coding agents)
MIN_CONTEXT = 16_384  # below this a Codex turn (4-6k of instructions + tool schemas) leaves too little room
CONTEXT_STEP = 1024

BACKEND_MINIMUM = {"metal": 512 * MiB}  # Ollama MinimumMemory(); every other backend: 457 MiB
DEFAULT_BACKEND_MINIMUM = 457 * MiB
FIT_MARGIN = 1024 * MiB  # llama.cpp --fit-target default, per device
CPU_RESERVE = 256 * MiB  # the llama-server process beside its buffers
RAM_MARGIN_FIXED = 1 * GiB  # detect's RAM margin for the OS and the rest, used when deriving a budget
RAM_MARGIN_FRACTION = 0.10
KV_CACHE_TYPES = ("f16", "q8_0", "q4_0")

# Ollama forces OLLAMA_NUM_PARALLEL to 1 for these architectures (fact sheet §3).
SINGLE_SLOT_ARCHITECTURES = frozenset(
    {"mllama", "qwen3vl", "qwen3vlmoe", "qwen35", "qwen35moe", "qwen3next", "lfm2", "lfm2moe"}
)

# Vocabulary sizes by GGUF architecture, for the compute-buffer estimate (the catalog does not carry them;
# figures from the families' tokenizer configs). Unknown architectures use DEFAULT_VOCAB.
VOCAB = {
    "qwen35": 248_320, "qwen35moe": 248_320, "qwen3next": 151_936, "qwen2": 151_936, "qwen3": 151_936,
    "qwen3moe": 151_936, "llama": 131_072, "mistral3": 131_072, "gemma3": 262_144, "gemma4": 262_144,
    "gptoss": 201_088, "deepseek2": 102_400, "glm4moelite": 154_880, "nemotron_h_moe": 131_072,
    "nemotron_h": 131_072, "granitehybrid": 100_352, "granite": 100_352, "laguna": 100_352,
}  # fmt: skip
DEFAULT_VOCAB = 152_064


class FitModel(Protocol):
    """What fit and speed read from a model: `localcodex.domain.catalog.CatalogModel` has all of it."""

    @property
    def tag(self) -> str: ...
    @property
    def architecture(self) -> str: ...
    @property
    def download_bytes(self) -> int: ...
    @property
    def params_total(self) -> int: ...
    @property
    def params_active(self) -> int: ...
    @property
    def block_count(self) -> int: ...
    @property
    def head_count(self) -> int: ...
    @property
    def embedding_length(self) -> int: ...
    @property
    def context_length(self) -> int: ...

    def kv_cache_bytes(self, num_ctx: int, cache_type: str = ..., parallel: int = ..., *, ubatch: int = ...) -> int:
        ...

    def kv_bytes_per_token(self, cache_type: str = ...) -> float:
        ...

    def ollama_preflight_kv_bytes(self, num_ctx: int, parallel: int = ...) -> int:
        ...


# -- settings -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How the Ollama server is configured, as far as memory goes (its environment, not ours)."""

    kv_cache_type: str = "f16"
    num_parallel: int = 1
    flash_attention: bool | None = None  # None = auto (on for every backend that supports it)
    gpu_overhead: int = 0  # OLLAMA_GPU_OVERHEAD, bytes per GPU
    num_batch: int | None = None  # None = Ollama's automatic batch
    notes: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str], server_version: str | None = None) -> Settings:
        """Read OLLAMA_KV_CACHE_TYPE, OLLAMA_NUM_PARALLEL, OLLAMA_FLASH_ATTENTION, OLLAMA_GPU_OVERHEAD.

        They are the *server's* variables; we can only see our own environment, which is the server's when
        `ollama serve` runs from the same shell, and otherwise tells nothing (then Ollama's defaults hold).

        >>> Settings.from_env({"OLLAMA_KV_CACHE_TYPE": "q8_0"}).kv_cache_type
        'q8_0'
        >>> s = Settings.from_env({"OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_FLASH_ATTENTION": "0"})
        >>> s.kv_cache_type, s.notes[0]
        ('f16', 'OLLAMA_KV_CACHE_TYPE=q8_0 has no effect with flash attention off: the KV cache is counted as f16')
        >>> Settings.from_env({"OLLAMA_KV_CACHE_TYPE": "q4_0"}, server_version="0.12.3").kv_cache_type
        'f16'
        """
        notes: list[str] = []
        flash = _env_bool(env.get("OLLAMA_FLASH_ATTENTION"))
        cache = _env_clean(env.get("OLLAMA_KV_CACHE_TYPE")).lower() or "f16"
        if cache not in KV_CACHE_TYPES:
            notes.append(f"OLLAMA_KV_CACHE_TYPE={cache} is not one Ollama knows (f16, q8_0, q4_0): counted as f16")
            cache = "f16"
        legacy = server_version is not None and _version(server_version) < (0, 30, 0)
        if cache != "f16" and (flash is False or (legacy and flash is not True)):
            why = "with flash attention off" if flash is False else "on Ollama < 0.30 unless OLLAMA_FLASH_ATTENTION=1"
            notes.append(f"OLLAMA_KV_CACHE_TYPE={cache} has no effect {why}: the KV cache is counted as f16")
            cache = "f16"
        parallel = _env_int(env.get("OLLAMA_NUM_PARALLEL")) or 1
        overhead = _env_int(env.get("OLLAMA_GPU_OVERHEAD")) or 0
        return cls(cache, max(1, parallel), flash, max(0, overhead), None, tuple(notes))

    def parallel_for(self, architecture: str) -> int:
        if architecture in SINGLE_SLOT_ARCHITECTURES or architecture.startswith("nemotron_h"):
            return 1
        return self.num_parallel


DEFAULT_SETTINGS = Settings()


def _env_clean(value: str | None) -> str:
    return (value or "").strip().strip("\"'").strip()


def _env_bool(value: str | None) -> bool | None:
    text = _env_clean(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    return None


def _env_int(value: str | None) -> int | None:
    try:
        return int(_env_clean(value))
    except ValueError:
        return None


def _version(text: str) -> tuple[int, int, int]:
    return parse_version(text) or (0, 0, 0)  # no x.y.z in it: judged as an old server


# -- the need -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes one loaded model takes at `num_ctx`, before the per-device reserve."""

    model: str
    num_ctx: int
    parallel: int
    kv_cache_type: str
    batch: int
    weights: int
    kv_cache: int
    compute: int
    ollama_preflight: int  # Ollama's own admission estimate: file size + its KV formula

    @property
    def resident(self) -> int:
        """Weights and KV: the part that is split across devices layer by layer."""
        return self.weights + self.kv_cache

    @property
    def total(self) -> int:
        """On a single device, without the reserve."""
        return self.weights + self.kv_cache + self.compute


def auto_batch(num_ctx: int, preflight: int, available: int) -> int:
    """Ollama's automatic batch (§4.3): by context, stepped down when the model is large for the memory.

    >>> auto_batch(4096, 1, 100), auto_batch(8192, 1, 100), auto_batch(65536, 1, 100)
    (512, 1024, 2048)
    >>> auto_batch(65536, 70, 100), auto_batch(65536, 80, 100)
    (1024, 512)
    """
    if num_ctx > 32768 and preflight <= 0.60 * available:
        return 2048
    if num_ctx > 4096 and preflight <= 0.75 * available:
        return 1024
    return 512


def vocab_size(model: FitModel) -> int:
    return getattr(model, "vocab_size", None) or VOCAB.get(model.architecture, DEFAULT_VOCAB)


def compute_bytes(model: FitModel, batch: int, num_ctx: int, flash_attention: bool | None) -> int:
    """llama.cpp's compute buffer for a micro-batch of `batch` tokens (see the module docstring)."""
    graph = 4 * batch * (vocab_size(model) + 4 * model.embedding_length)
    if flash_attention is False:
        graph += 4 * batch * num_ctx * model.head_count
    return graph


def memory_need(
    model: FitModel, num_ctx: int, settings: Settings = DEFAULT_SETTINGS, available: int | None = None
) -> MemoryNeed:
    """The need at `num_ctx`; `available` (bytes on the devices that will hold it) drives the batch step-down."""
    parallel = settings.parallel_for(model.architecture)
    preflight = model.download_bytes + model.ollama_preflight_kv_bytes(num_ctx, parallel)
    room = available if available is not None else preflight * 2
    batch = settings.num_batch or auto_batch(num_ctx, preflight, room)
    kv = model.kv_cache_bytes(num_ctx, settings.kv_cache_type, parallel, ubatch=batch)
    compute = compute_bytes(model, batch, num_ctx * parallel, settings.flash_attention)
    return MemoryNeed(
        model.tag, num_ctx, parallel, settings.kv_cache_type, batch, model.download_bytes, kv, compute, preflight
    )


# -- placement ------------------------------------------------------------------------------------------

PLACEMENTS = ("unified", "gpu", "multi_gpu", "partial", "cpu", "none")
FULL_PLACEMENTS = ("unified", "gpu", "multi_gpu")


@dataclass(frozen=True)
class Part:
    """What one device holds: `device` is `gpu0`, `gpu1`, … or `cpu`."""

    device: str
    bytes: int  # everything this device must hold, reserve included
    budget: int
    share: float  # fraction of the layers (weights + KV) on this device


@dataclass(frozen=True)
class Fit:
    model: str
    need: MemoryNeed
    placement: str  # one of PLACEMENTS
    parts: tuple[Part, ...] = ()
    gpu_fraction: float = 0.0  # share of weights + KV on GPUs (1.0 = all)
    reason: str = ""
    gpu_machine: bool = False  # the machine has a GPU Ollama uses (so "cpu" means it could not use it)

    @property
    def fits(self) -> bool:
        return self.placement != "none"

    @property
    def full(self) -> bool:
        """All of it on GPU / unified memory (or all in RAM on a machine without a usable GPU)."""
        return self.placement in FULL_PLACEMENTS or (self.placement == "cpu" and not self.gpu_machine)

    @property
    def slow(self) -> bool:
        """Partial offload, or CPU only on a machine with a GPU: the CPU-resident layers set the pace."""
        return self.placement == "partial" or (self.placement == "cpu" and self.gpu_machine)

    @property
    def total(self) -> int:
        return sum(p.bytes for p in self.parts)


def budget_of(machine: Machine, settings: Settings | None = None) -> Budget:
    """The machine's budget from detect, or one derived the way detect derives it when a Machine has none."""
    if machine.budget is not None:
        return machine.budget
    overhead = settings.gpu_overhead if settings else 0
    available = min(machine.ram_available, machine.cgroup_limit or machine.ram_available)
    base = min(machine.ram_total, machine.cgroup_limit or machine.ram_total)
    ram = max(0, available - RAM_MARGIN_FIXED - int(RAM_MARGIN_FRACTION * base))
    gpus = usable_gpus(machine)
    budgets = []
    for g in gpus:
        start = g.memory_free if g.memory_free is not None else (g.memory_total or 0)
        if g.unified_memory:
            start = min(start, available)
        budgets.append(max(0, start - BACKEND_MINIMUM.get(g.backend, DEFAULT_BACKEND_MINIMUM) - overhead))
    unified = any(g.unified_memory for g in gpus)
    return Budget(tuple(budgets), ram, "derived from free memory (no budget from detect)", unified=unified)


def usable_gpus(machine: Machine) -> tuple[GPU, ...]:
    return tuple(g for g in machine.gpus if g.used_by_ollama)


def device_reserve(gpu: GPU | None, settings: Settings) -> int:
    """What a device keeps free beside the model (Ollama's own minimum is already out of the budget)."""
    return CPU_RESERVE if gpu is None else FIT_MARGIN


def place(model: FitModel, num_ctx: int, machine: Machine, settings: Settings = DEFAULT_SETTINGS) -> Fit:
    """Where the model goes at `num_ctx` on this machine (see the module docstring for the order)."""
    budget = budget_of(machine, settings)
    gpus = usable_gpus(machine)
    gpu_budgets = [(i, b, gpus[i] if i < len(gpus) else None) for i, b in enumerate(budget.gpu) if b > 0]
    if budget.unified and gpu_budgets:
        return _place_unified(model, num_ctx, budget, gpu_budgets[0][2], settings)
    if gpu_budgets:
        return _place_discrete(model, num_ctx, budget, gpu_budgets, settings)
    return _place_cpu(model, num_ctx, budget.ram, settings)


def _place_cpu(model: FitModel, num_ctx: int, ram: int, settings: Settings, gpu_machine: bool = False) -> Fit:
    need = memory_need(model, num_ctx, settings, ram)
    total = need.total + CPU_RESERVE
    part = Part("cpu", total, ram, 1.0)
    if total > ram:
        why = f"needs {_gib(total)} of RAM, {_gib(ram)} available"
        return Fit(model.tag, need, "none", (part,), 0.0, why, gpu_machine)
    why = "the GPU has no room for it: runs on the CPU (slow)" if gpu_machine else "runs on the CPU from RAM"
    return Fit(model.tag, need, "cpu", (part,), 0.0, why, gpu_machine)


def _place_unified(model: FitModel, num_ctx: int, budget: Budget, gpu: GPU | None, settings: Settings) -> Fit:
    pool = budget.gpu[0]
    need = memory_need(model, num_ctx, settings, pool)
    on_gpu = need.total + device_reserve(gpu, settings)
    if on_gpu <= pool:
        part = Part("gpu0", on_gpu, pool, 1.0)
        return Fit(model.tag, need, "unified", (part,), 1.0, "fits in unified memory (GPU working set)", True)
    room = pool - need.compute - device_reserve(gpu, settings)
    in_ram = need.total + CPU_RESERVE  # the same memory: the whole model must fit in RAM
    if room > 0 and in_ram <= budget.ram:
        share = min(1.0, room / need.resident)
        parts = (Part("gpu0", pool, pool, share), Part("cpu", in_ram - pool, budget.ram - pool, 1 - share))
        return Fit(model.tag, need, "partial", parts, share, _partial_reason(share, "the GPU working set"), True)
    why = f"needs {_gib(on_gpu)}; the GPU working set is {_gib(pool)} and RAM {_gib(budget.ram)}"
    return Fit(model.tag, need, "none", (Part("gpu0", on_gpu, pool, 1.0),), 0.0, why, True)


def _place_discrete(
    model: FitModel, num_ctx: int, budget: Budget, gpu_budgets: list[tuple[int, int, GPU | None]], settings: Settings
) -> Fit:
    index, best, gpu = max(gpu_budgets, key=lambda item: item[1])
    need = memory_need(model, num_ctx, settings, best)
    single = need.total + device_reserve(gpu, settings)
    if single <= best:
        part = Part(f"gpu{index}", single, best, 1.0)
        return Fit(model.tag, need, "gpu", (part,), 1.0, f"fits on GPU {index}", True)
    if len(gpu_budgets) > 1:
        split = _place_split(model, num_ctx, gpu_budgets, settings)
        if split is not None:
            return split
    return _place_partial(model, num_ctx, budget, gpu_budgets, settings)


def _rooms(need: MemoryNeed, model: FitModel, gpu_budgets: list[tuple[int, int, GPU | None]], settings: Settings):
    """Room for layers on each card: budget - reserve - compute buffer - one layer lost to rounding."""
    layer = need.resident / max(model.block_count, 1)
    rooms = []
    for index, budget, gpu in gpu_budgets:
        room = budget - device_reserve(gpu, settings) - need.compute - layer
        if room > 0:
            rooms.append((index, budget, gpu, room))
    return rooms


def _place_split(model: FitModel, num_ctx: int, gpu_budgets, settings: Settings) -> Fit | None:
    need = memory_need(model, num_ctx, settings, sum(b for _, b, _ in gpu_budgets))
    rooms = _rooms(need, model, gpu_budgets, settings)
    capacity = sum(room for *_, room in rooms)
    if len(rooms) < 2 or need.resident > capacity:
        return None
    parts = []
    for index, budget, gpu, room in rooms:
        share = room / capacity
        held = round(need.resident * share) + need.compute + device_reserve(gpu, settings)
        parts.append(Part(f"gpu{index}", held, budget, share))
    return Fit(model.tag, need, "multi_gpu", tuple(parts), 1.0, f"split across {len(parts)} GPUs by layers", True)


def _place_partial(model: FitModel, num_ctx: int, budget: Budget, gpu_budgets, settings: Settings) -> Fit:
    need = memory_need(model, num_ctx, settings, sum(b for _, b, _ in gpu_budgets) + budget.ram)
    rooms = _rooms(need, model, gpu_budgets, settings)
    capacity = min(sum(room for *_, room in rooms), need.resident)
    in_ram = need.resident - capacity + need.compute + CPU_RESERVE
    if capacity <= 0:
        return _place_cpu(model, num_ctx, budget.ram, settings, gpu_machine=True)
    if in_ram > budget.ram:
        why = f"needs {_gib(in_ram)} of RAM beside {_gib(capacity)} on the GPU(s); {_gib(budget.ram)} available"
        return Fit(model.tag, need, "none", (), 0.0, why, True)
    parts = []
    for index, gpu_budget, gpu, room in rooms:
        held = round(capacity * room / sum(r for *_, r in rooms))
        parts.append(Part(f"gpu{index}", held + need.compute + device_reserve(gpu, settings), gpu_budget,
                          held / need.resident))
    share = capacity / need.resident
    parts.append(Part("cpu", in_ram, budget.ram, 1 - share))
    return Fit(model.tag, need, "partial", tuple(parts), share, _partial_reason(share, "GPU memory"), True)


def _partial_reason(share: float, where: str) -> str:
    return f"partial offload: {share:.0%} of the model in {where}, the rest on the CPU (slow)"


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"

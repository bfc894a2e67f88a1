"""How fast a model will run here: decode and prompt tokens/s, estimated, or measured when we have it.

Decode (generating tokens) reads every active weight and the KV cache once per token, so it is bound by
memory bandwidth:

    seconds per token = sum over devices d of  bytes_read_d / (bandwidth_d x efficiency_d)
    bytes read        = weights x (params_active / params_total)        (all weights for a dense model)
                      + KV cache at the working context                  (kv_cache_bytes(context_tokens))
    bytes_read_d      = bytes read x the share of layers device d holds  (placement from fit.py)

Layers run one after another, so a split across GPUs, or GPU + CPU for partial offload, adds up time per
token (a time-weighted mix: a model 80% on a GPU and 20% on the CPU is slowed mostly by the CPU part).

`ceiling_tps` (of `estimate_for`) is the same sum with efficiency 1: the pure bandwidth bound (bench reports "% of
ceiling" against it). The estimate applies an efficiency, from published llama.cpp runs:
- Apple M1 Max (400 GB/s), llama 3.1 8B Q4_K_M 4.92 GB: 46.2 tok/s = 227 GB/s = 57% (brand-o/normiebench#40);
  Qwen3.x-27B IQ4_NL 16.34 GB at 14.3 tok/s = 58% (ggml-org/llama.cpp#27525); M4 (120 GB/s): 20.9 tok/s = 86%
  (normiebench#3). Metal: 0.65, between them.
- CUDA runs land in the same 55-65% band for Q4 models (llama.cpp benchmark threads); 0.60. ROCm and Vulkan
  kernels reach less in the same threads: 0.50 / 0.45; SYCL 0.40.
- CPU: 13900K with DDR5-6400 (102 GB/s peak) decodes a 3.8 GB 7B Q4_0 at 18.3 tok/s = 69 GB/s
  (ggml-org/llama.cpp#34), about what a multi-threaded copy reaches there: 0.85 of the *measured* copy
  bandwidth (adapters/membw.py), 0.60 of an assumed peak when nothing was measured. On few cores a small
  model is bound by the dot products instead, and at a long context by attention, which the CPU runs as a
  loop over the cached tokens: per token max(bytes / bandwidth, 2 x active params / (CPU peak x 0.25)) +
  attention FLOPs / (CPU peak x 0.012) + 250 us per layer + 1 ms, calibrated on SmolLM2-135M Q4_1 with
  llama-server on this project's 2-core AVX-512 machine (scripts/cpu_calibration.py --long: decode ~71 tok/s
  at ~100 tokens in cache, ~12 at ~3,900; prefill ~244 and ~170 tok/s).
- Mixture of experts: x 0.8 on top (expert routing and scattered expert reads keep kernels below the dense
  figures); gemma4 x 0.45 and hybrid-recurrent models x 0.67 (see MOE_FACTOR_BY_ARCH). Bytes that are in the
  file but not read per token (MTP blocks, a vision tower, per-layer embeddings: `unread_bytes`) are left out.
The GPU figures come from `chips.py` (spec sheets); an unknown GPU gets an assumed bandwidth and the estimate
says so.

Prompt processing (prefill) is compute-bound: 2 x active params FLOPs per token plus attention (each prompt token
attends to the tokens before it: half the prompt on average), divided into the chip's peak
FP16 TFLOPS x an efficiency (CUDA 0.8 - its int8/fp16 tensor kernels reach near peak at batch 512; Metal 0.75:
M1 Max pp512 of llama 3.1 8B is 500 tok/s = 8 TFLOPS of 10.4; ROCm 0.45, Vulkan 0.35, SYCL 0.3). CPU peak is
estimated from cores x 3 GHz x FMA width (AVX-512 64, AVX2 32, NEON 32 FLOP/cycle) with efficiency 0.16
(calibrated as above).

Working context: the KV read depends on how full the cache is; a Codex session spends most of its time with
10-30k tokens in context, so estimates use min(num_ctx, 16,384) tokens (`WORKING_CONTEXT`) unless told.

Everything here is an estimate; when the receipts hold a benchmark of this model on this machine, the
measured figure replaces it (`SpeedEstimate.basis == "measured"`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from localcodex.core.recommend.chips import Chip, lookup
from localcodex.core.recommend.fit import DEFAULT_SETTINGS, Fit, FitModel, Settings, place, usable_gpus
from localcodex.domain.machine import GPU, Machine

WORKING_CONTEXT = 16_384
GB = 1e9

DECODE_EFFICIENCY = {"cuda": 0.60, "metal": 0.65, "rocm": 0.50, "vulkan": 0.45, "sycl": 0.40}
# AMD APUs (Radeon 780M, Strix Halo 8060S) read their LPDDR5 at a far higher share than discrete cards reach
# through ROCm/Vulkan: Strix Halo decodes Llama-2-7B Q4_K_M (4.08 GB) at 46.4 tok/s = 74% of 256 GB/s
# (AMD-Ecosystem/llama.cpp#59); a 780M laptop llama 3.1 8B Q4_K_M at 16.3 tok/s = 67% of 120 GB/s
# (brand-o/normiebench#10).
AMD_APU_EFFICIENCY = 0.72
DEFAULT_GPU_EFFICIENCY = 0.45
CPU_MEASURED_EFFICIENCY = 0.85
CPU_ASSUMED_EFFICIENCY = 0.60
MOE_FACTOR = 0.8
# Where a comparison showed the generic factors wrong (issue 17's side-by-side with published RTX 3090 runs):
# gemma4:26b was estimated 60-100% too fast at 0.8 (its 128-expert routing with a shared expert reads far more
# scattered memory), so 0.8 / 1.8; the qwen3.5-27b architecture 50% too fast: the Gated DeltaNet / Mamba layers
# cost compute per token that a bandwidth model does not see, so hybrid-recurrent models get x 1 / 1.5.
MOE_FACTOR_BY_ARCH = {"gemma4": 0.45}
HYBRID_RECURRENT_FACTOR = 0.67
PROMPT_EFFICIENCY = {"cuda": 0.80, "metal": 0.75, "rocm": 0.45, "vulkan": 0.35, "sycl": 0.30}
# Calibrated on SmolLM2-135M Q4_1 with llama-server --no-repack on this project's 2 AVX-512 cores: prefill 241-252
# tok/s for a 48-token prompt, 170-179 for a 3,886-token one (scripts/cpu_calibration.py --long, 2026-12-03).
CPU_PROMPT_EFFICIENCY = 0.16
# CPU decode is also bound by the dot products (quantized matrix x vector, 2 x active params per token) and by a
# fixed cost per layer (thread barriers, small ops); both vanish next to the bandwidth term for a 7B model, but
# decide a tiny one. Calibrated on SmolLM2-135M Q4_1 here (llama-server --no-repack: decode 69-74 tok/s with ~100
# tokens in cache, 12-13 with ~3,900, on the 2 shared cores, llama-server getting 85% of them).
CPU_DECODE_COMPUTE_EFFICIENCY = 0.25
# Attention of one new token against the cache runs on the CPU as a loop over the cached tokens of every head
# (ggml's flash-attention kernel for a single query: a 64-128-wide dot product, a softmax step and a scaled add
# per cached token), far from the matrix kernels' throughput. Measured with scripts/cpu_calibration.py --long:
# SmolLM2-135M decodes at ~3,900 tokens in cache 5-6x slower than at ~100, although the bytes read per token
# only double (98 MB of weights + 90 MB of KV): the 0.27 GFLOP of attention per token take ~65 ms, ~4 GFLOPS,
# about 1.2% of the 2 cores' peak.
CPU_DECODE_ATTENTION_EFFICIENCY = 0.012
# Per layer per token: thread barriers between a layer's ~20 small ops. 250 us is the figure on the shared 2-core
# machine above (other jobs running: a barrier waits whenever one of the threads is preempted); an idle machine
# is faster, so small models' CPU estimates err on the slow side there.
CPU_LAYER_OVERHEAD_S = 250e-6
CPU_TOKEN_OVERHEAD_S = 1e-3  # per token: sampling over the vocabulary, the server's own work
CPU_CLOCK_HZ = 3.0e9

# When nothing better is known. Dual-channel DDR4-3200 peaks at 51.2 GB/s; copies reach ~80% of it.
ASSUMED_RAM_BANDWIDTH = 40 * GB
# A discrete GPU the table does not know (or one given by --vram): guessed from its memory size class, since
# cards are built with bandwidth to match (8 GB ~ 270-450 GB/s, 16 GB ~ 450-650, 24 GB ~ 900-1000); the low end
# of each class. Integrated / unified parts get a low-end LPDDR5 figure.
ASSUMED_GPU_BANDWIDTH_BY_MEMORY = ((40 * 1024**3, 800 * GB), (20 * 1024**3, 700 * GB), (14 * 1024**3, 450 * GB),
                                   (10 * 1024**3, 360 * GB), (0, 250 * GB))
ASSUMED_INTEGRATED_BANDWIDTH = 100 * GB
# Apple's CPU clusters reach about half of the SoC's memory bandwidth (the GPU gets all of it).
UNIFIED_CPU_SHARE = 0.5


@dataclass(frozen=True)
class Bandwidth:
    """Memory bandwidth of one device, in bytes/s, and how we know it."""

    device: str  # "gpu0", "cpu", ...
    bytes_per_s: float
    efficiency: float
    source: str  # "spec: RTX 4090 (NVIDIA spec sheet)", "measured: memory copy probe", "assumed: …"
    tflops: float | None = None  # peak FP16 compute (prompt processing)
    prompt_efficiency: float = 0.5

    @property
    def known(self) -> bool:
        return not self.source.startswith("assumed")


@dataclass(frozen=True)
class SpeedEstimate:
    """Decode and prompt speed of one model at one placement. `basis`: measured | estimate | assumed."""

    model: str
    decode_tps: float | None
    ceiling_tps: float | None  # bandwidth bound, efficiency 1
    prompt_tps: float | None
    bytes_per_token: int
    context_tokens: int
    basis: str
    estimated_tps: float | None = None  # the estimate even when a measurement replaced it
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class RamBandwidth:
    """RAM bandwidth the caller knows: measured by the copy probe, or from an override."""

    bytes_per_s: float
    source: str = "measured: memory copy probe"

    @classmethod
    def probed(cls, bytes_per_s: float | None) -> RamBandwidth | None:
        """The copy probe's result, as recommend and bench both describe it (None: no probe here)."""
        if bytes_per_s is None:
            return None
        return cls(bytes_per_s, f"measured: memory copy probe, {bytes_per_s / 1e9:.0f} GB/s")


# -- bandwidth of each device ---------------------------------------------------------------------------


def gpu_bandwidth(gpu: GPU, machine: Machine, device: str) -> Bandwidth:
    chip = lookup(gpu.name, machine.ram_total if gpu.unified_memory else gpu.memory_total)
    eff = DECODE_EFFICIENCY.get(gpu.backend, DEFAULT_GPU_EFFICIENCY)
    if gpu.vendor == "amd" and (gpu.integrated or gpu.unified_memory):
        eff = AMD_APU_EFFICIENCY
    peff = PROMPT_EFFICIENCY.get(gpu.backend, 0.3)
    if chip is not None:
        return Bandwidth(device, chip.bandwidth_gbs * GB, eff, _spec(chip), chip.fp16_tflops, peff)
    assumed = assumed_gpu_bandwidth(gpu)
    why = f"assumed: {gpu.name} is not in the bandwidth table, {assumed / GB:.0f} GB/s for its memory size"
    return Bandwidth(device, assumed, eff, why, None, peff)


def assumed_gpu_bandwidth(gpu: GPU) -> float:
    if gpu.integrated or gpu.unified_memory or gpu.backend == "metal":
        return ASSUMED_INTEGRATED_BANDWIDTH
    memory = gpu.memory_total or 0
    return next(bw for floor, bw in ASSUMED_GPU_BANDWIDTH_BY_MEMORY if memory >= floor)


def _spec(chip: Chip) -> str:
    return f"spec: {chip.name} {chip.bandwidth_gbs:g} GB/s ({chip.source})"


def cpu_bandwidth(machine: Machine, ram: RamBandwidth | None) -> Bandwidth:
    tflops = cpu_tflops(machine)
    gpus = usable_gpus(machine)
    if gpus and gpus[0].unified_memory:
        chip = lookup(gpus[0].name, machine.ram_total)
        if chip is not None:
            why = f"{_spec(chip)} x {UNIFIED_CPU_SHARE} for the CPU cores"
            return Bandwidth("cpu", chip.bandwidth_gbs * GB * UNIFIED_CPU_SHARE, DECODE_EFFICIENCY["metal"], why,
                             tflops, CPU_PROMPT_EFFICIENCY)
    if ram is not None and ram.bytes_per_s > 0:
        return Bandwidth("cpu", ram.bytes_per_s, CPU_MEASURED_EFFICIENCY, ram.source, tflops, CPU_PROMPT_EFFICIENCY)
    why = f"assumed: RAM not measured, {ASSUMED_RAM_BANDWIDTH / GB:.0f} GB/s (dual-channel DDR4 class)"
    return Bandwidth("cpu", ASSUMED_RAM_BANDWIDTH, CPU_ASSUMED_EFFICIENCY, why, tflops, CPU_PROMPT_EFFICIENCY)


def cpu_tflops(machine: Machine) -> float:
    """Peak FP32 TFLOPS of the CPU: cores x 3 GHz x FLOPs per cycle of its widest FMA."""
    cores = machine.cores_physical or machine.cores_logical or 4
    simd = {s.lower() for s in machine.simd}
    per_cycle = 64 if "avx512" in simd else 32 if ("avx2" in simd or "neon" in simd) else 16
    return cores * CPU_CLOCK_HZ * per_cycle / 1e12


def device_bandwidths(fit: Fit, machine: Machine, ram: RamBandwidth | None) -> list[tuple[Bandwidth, float]]:
    """(bandwidth, share of layers) for every device holding part of the model."""
    gpus = usable_gpus(machine)
    result = []
    for part in fit.parts:
        if part.share <= 0:
            continue
        if part.device == "cpu":
            result.append((cpu_bandwidth(machine, ram), part.share))
            continue
        index = int(part.device.removeprefix("gpu"))
        gpu = gpus[index] if index < len(gpus) else None
        if gpu is None:
            result.append((cpu_bandwidth(machine, ram), part.share))
        else:
            result.append((gpu_bandwidth(gpu, machine, part.device), part.share))
    return result


# -- the estimate ---------------------------------------------------------------------------------------


def unread_bytes(model: FitModel) -> int:
    """Bytes of the download decode does not read per token.

    The MTP (next-token-prediction) blocks (`nextn_layers`, beyond `block_count`): one block's share of the
    file each (an upper bound: the share also holds the embeddings), plus what the catalog lists as
    `unread_bytes` with its source (a vision tower, per-layer embedding tables read one row at a time).
    """
    nextn = getattr(model, "nextn_layers", 0) or 0
    mtp = model.download_bytes * nextn // (model.block_count + nextn) if nextn and model.block_count else 0
    return mtp + (getattr(model, "unread_bytes", 0) or 0)


def bytes_per_token(model: FitModel, context_tokens: int, cache_type: str = "f16") -> int:
    """Bytes decode reads per generated token: active weights + the KV cache at `context_tokens`."""
    weights = max(model.download_bytes - unread_bytes(model), 0)
    if model.params_total and model.params_active < model.params_total:
        weights = round(weights * model.params_active / model.params_total)
    return weights + model.kv_cache_bytes(max(context_tokens, 1), cache_type, 1)


def decode_factor(model: FitModel) -> float:
    """Below the bandwidth bound beyond the device's efficiency: MoE routing, hybrid-recurrent compute."""
    factor = MOE_FACTOR_BY_ARCH.get(model.architecture, MOE_FACTOR) if _is_moe(model) else 1.0
    if getattr(model, "recurrent_layers", 0):
        factor *= HYBRID_RECURRENT_FACTOR
    return factor


def _is_moe(model: FitModel) -> bool:
    return bool(model.params_total and model.params_active < model.params_total)


def flops_per_token(model: FitModel, position: int) -> float:
    """Compute for one token at `position` in the sequence: 2 FLOPs per active weight, plus attention."""
    return 2.0 * (model.params_active or model.params_total) + attention_flops(model, position)


def attention_flops(model: FitModel, position: int) -> float:
    """Attention of one token at `position`: QK^T and the weighted sum of V, 2 x 2 x heads x head width FLOPs per
    cached token it looks at, in every layer that attends (not the recurrent / FFN-only ones); a sliding-window
    layer looks at most at its window. Negligible next to the weights at a short context, it is what slows a
    long prompt: SmolLM2-135M spends as much on attention as on its weights at ~4,000 tokens.
    """
    heads = model.head_count
    width = getattr(model, "head_dim_k", 0) or model.embedding_length // max(heads, 1)
    layers = model.block_count - (getattr(model, "recurrent_layers", 0) or 0) - (
        getattr(model, "ffn_only_layers", 0) or 0
    )
    window = getattr(model, "sliding_window", 0) or 0
    sliding = getattr(model, "sliding_layers", 0) or 0
    own_cache = (getattr(model, "kv_layers", 0) or 0) + sliding
    sliding_share = sliding / own_cache if window and own_cache else 0.0
    span = position * (1 - sliding_share) + min(position, window) * sliding_share
    return 4.0 * heads * width * max(layers, 0) * span


def _decode(
    per_token: int,
    devices: Sequence[tuple[Bandwidth, float]],
    factor: float,
    efficient: bool,
    model: FitModel | None = None,
    tokens: int = 1,
) -> float:
    seconds = 0.0
    for bw, share in devices:
        eff = bw.efficiency * factor if efficient else 1.0
        memory = per_token * share / (bw.bytes_per_s * eff)
        if efficient and model is not None and bw.device == "cpu" and bw.tflops:
            peak = bw.tflops * 1e12
            weights = 2.0 * (model.params_active or model.params_total) * share / (peak * CPU_DECODE_COMPUTE_EFFICIENCY)
            attention = attention_flops(model, tokens) * share / (peak * CPU_DECODE_ATTENTION_EFFICIENCY)
            fixed = model.block_count * share * CPU_LAYER_OVERHEAD_S + share * CPU_TOKEN_OVERHEAD_S
            memory = max(memory, weights) + attention + fixed
        seconds += memory
    return 1.0 / seconds if seconds > 0 else 0.0


def _prompt(model: FitModel, devices: Sequence[tuple[Bandwidth, float]], tokens: int) -> float | None:
    """Prefill of a prompt that fills the cache to `tokens`: its tokens sit at tokens / 2 on average."""
    flops = flops_per_token(model, tokens // 2)
    seconds = 0.0
    for bw, share in devices:
        if not bw.tflops:
            return None
        seconds += flops * share / (bw.tflops * 1e12 * bw.prompt_efficiency)
    return 1.0 / seconds if seconds > 0 else None


def estimate_speed(
    model: FitModel,
    fit: Fit,
    machine: Machine,
    *,
    ram: RamBandwidth | None = None,
    context_tokens: int | None = None,
    measured_tps: float | None = None,
) -> SpeedEstimate:
    """Decode/prompt tokens/s for `model` placed as `fit` says; a measured figure wins when given."""
    tokens = context_tokens or min(fit.need.num_ctx, WORKING_CONTEXT)
    per_token = bytes_per_token(model, tokens, fit.need.kv_cache_type)
    if not fit.fits:
        return SpeedEstimate(model.tag, None, None, None, per_token, tokens, "estimate", None, ())
    devices = device_bandwidths(fit, machine, ram)
    factor = decode_factor(model)
    estimate = _decode(per_token, devices, factor, efficient=True, model=model, tokens=tokens)
    ceiling = _decode(per_token, devices, 1.0, efficient=False)
    sources = tuple(dict.fromkeys(f"{bw.device}: {bw.source}" for bw, _ in devices))
    basis = "estimate" if all(bw.known for bw, _ in devices) else "assumed"
    if measured_tps:
        basis = "measured"
    return SpeedEstimate(
        model.tag, measured_tps or estimate, ceiling, _prompt(model, devices, tokens), per_token, tokens, basis,
        estimate, sources,
    )


def estimate_for(
    model: FitModel,
    machine: Machine,
    *,
    num_ctx: int,
    context_tokens: int | None = None,
    ram: RamBandwidth | None = None,
    settings: Settings = DEFAULT_SETTINGS,
) -> SpeedEstimate:
    """`estimate_speed` for a model loaded with `num_ctx`, placed on `machine` as fit.py places it.

    `context_tokens`: how many tokens sit in the cache while decoding (bench passes its prompt size); else
    min(num_ctx, 16,384). `.decode_tps` is the estimate, `.ceiling_tps` the pure bandwidth bound bench reports
    "% of ceiling" against; both None when the model does not fit at all.
    """
    fit = place(model, num_ctx, machine, settings)
    return estimate_speed(model, fit, machine, ram=ram, context_tokens=context_tokens)

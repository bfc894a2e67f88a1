"""Speed model: bandwidth table, decode estimate and ceiling, MoE, partial offload mix, prompt, RAM probe."""

from __future__ import annotations

import json

import pytest

from localcodex.adapters.membw import CACHE_NAME, cached_ram_bandwidth, measure_ram_bandwidth
from localcodex.core.recommend.chips import lookup
from localcodex.core.recommend.fit import place
from localcodex.core.recommend.speed import (
    CPU_DECODE_ATTENTION_EFFICIENCY,
    CPU_LAYER_OVERHEAD_S,
    CPU_MEASURED_EFFICIENCY,
    CPU_TOKEN_OVERHEAD_S,
    MOE_FACTOR,
    RamBandwidth,
    attention_flops,
    bytes_per_token,
    cpu_tflops,
    estimate_for,
    estimate_speed,
)
from localcodex.domain.catalog import load_catalog
from localcodex.domain.machine import GPU, Budget, Machine

GiB = 1024**3
CAT = load_catalog()


def rtx(name: str = "NVIDIA GeForce RTX 4090", budget: int = 23 * GiB, ram: int = 48 * GiB) -> Machine:
    gpu = GPU(0, "nvidia", name, budget, budget, "cuda")
    return Machine("linux", "x86_64", "cpu", 16, 32, ("avx2",), 64 * GiB, ram, gpus=(gpu,),
                   budget=Budget((budget,), ram, "test"))  # fmt: skip


def cpu_only(ram: int = 28 * GiB) -> Machine:
    return Machine("linux", "x86_64", "cpu", 8, 16, ("avx2",), 32 * GiB, ram, budget=Budget((), ram, "test"))


@pytest.mark.parametrize(
    ("name", "memory", "gbs"),
    [
        ("NVIDIA GeForce RTX 4090", None, 1008),
        ("NVIDIA GeForce RTX 3090", None, 936),
        ("NVIDIA GeForce RTX 4070 Laptop GPU", None, 256),
        ("AMD Radeon RX 7900 XTX", None, 960),
        ("AMD Radeon 8060S", None, 256),
        ("Apple M3 Pro", None, 150),
        ("Apple M3 Max", 36 * GiB, 300),
        ("Apple M3 Max", 128 * GiB, 400),
        ("Apple M4 Max", 36 * GiB, 410),
        ("Apple M4 Max", 128 * GiB, 546),
    ],
)
def test_bandwidth_table(name, memory, gbs):
    assert lookup(name, memory).bandwidth_gbs == gbs


def test_dense_decode_is_bandwidth_over_bytes_per_token():
    model = CAT.get("llama3.1:8b")
    machine = rtx()
    # bytes per token at 1 token of context: 4.9 GB of weights + 1 x 131,072 B of KV -> padded to 256 cells
    per_token = bytes_per_token(model, 1)
    assert per_token == 4_900_000_000 + 256 * 131_072
    speed = estimate_for(model, machine, num_ctx=16384, context_tokens=1)
    assert speed.ceiling_tps == pytest.approx(1008e9 / per_token)  # 1008 GB/s / 4.93 GB = 204.4 tok/s
    assert speed.decode_tps == pytest.approx(0.60 * speed.ceiling_tps)


def test_kv_read_at_the_working_context_slows_decode():
    model, machine = CAT.get("llama3.1:8b"), rtx()
    short = estimate_for(model, machine, num_ctx=65536, context_tokens=1024).decode_tps
    long = estimate_for(model, machine, num_ctx=65536, context_tokens=65536).decode_tps
    # 65,536 tokens x 131,072 B = 8.6 GB of KV read per token on top of 4.9 GB of weights
    assert long == pytest.approx(short * (4.9e9 + 1024 * 131_072) / (4.9e9 + 65536 * 131_072))


def test_moe_reads_only_the_active_weights():
    model = CAT.get("qwen3-coder:30b")
    per_token = bytes_per_token(model, 1)
    active_weights = round(model.download_bytes * model.params_active / model.params_total)
    assert per_token == active_weights + 256 * 98_304
    assert per_token < model.download_bytes / 5
    fit = place(model, 16384, rtx())
    speed = estimate_speed(model, fit, rtx(), context_tokens=1)
    assert speed.decode_tps == pytest.approx(speed.ceiling_tps * 0.60 * MOE_FACTOR)


def test_bytes_not_read_per_token_and_family_factors():
    from localcodex.core.recommend.speed import HYBRID_RECURRENT_FACTOR, decode_factor, unread_bytes

    nine = CAT.get("qwen3.5:9b")  # one MTP block and a 0.9 GB vision tower in the file, neither read per token
    mtp = nine.download_bytes * nine.nextn_layers // (nine.block_count + nine.nextn_layers)
    assert unread_bytes(nine) == mtp + 900_000_000 and nine.unread_source
    assert bytes_per_token(nine, 1) == nine.download_bytes - unread_bytes(nine) + nine.kv_cache_bytes(1)
    e4b = CAT.get("gemma4:e4b")  # the per-layer embedding table (262,144 x 42 x 256 x 2 B) is read a row at a time
    assert unread_bytes(e4b) == 262_144 * 42 * 256 * 2 and e4b.unread_source
    assert bytes_per_token(e4b, 1) < 0.45 * e4b.download_bytes
    assert decode_factor(CAT.get("llama3.1:8b")) == 1.0
    assert decode_factor(CAT.get("qwen3-coder:30b")) == MOE_FACTOR
    assert decode_factor(CAT.get("gemma4:26b")) < MOE_FACTOR  # gemma4's routing reads more scattered memory
    assert decode_factor(CAT.get("qwen3.5:27b")) == HYBRID_RECURRENT_FACTOR  # Gated DeltaNet compute


def test_partial_offload_is_a_time_weighted_mix_of_gpu_and_cpu():
    model = CAT.get("qwen2.5-coder:32b")
    machine = rtx("NVIDIA GeForce RTX 4070 Laptop GPU", budget=7 * GiB)
    fit = place(model, 16384, machine)
    assert fit.placement == "partial"
    ram = RamBandwidth(50e9)
    speed = estimate_speed(model, fit, machine, ram=ram, context_tokens=1)
    per_token = bytes_per_token(model, 1)
    gpu_share = fit.gpu_fraction
    cpu_share = 1 - gpu_share
    seconds = per_token * gpu_share / (256e9 * 0.60) + per_token * cpu_share / (50e9 * CPU_MEASURED_EFFICIENCY)
    # + the CPU's fixed costs per token (its layers' barriers, sampling) and its layers' attention, which is
    # bandwidth-bound otherwise
    seconds += cpu_share * (model.block_count * CPU_LAYER_OVERHEAD_S + CPU_TOKEN_OVERHEAD_S)
    seconds += cpu_share * attention_flops(model, 1) / (cpu_tflops(machine) * 1e12 * CPU_DECODE_ATTENTION_EFFICIENCY)
    assert speed.decode_tps == pytest.approx(1 / seconds)
    all_gpu = 256e9 * 0.60 / per_token
    assert speed.decode_tps < all_gpu / 2  # the CPU part dominates


def test_cpu_uses_the_measured_ram_bandwidth_and_says_so():
    model, machine = CAT.get("qwen3.5:4b"), cpu_only()
    fit = place(model, 16384, machine)
    fast = estimate_speed(model, fit, machine, ram=RamBandwidth(80e9), context_tokens=1)
    slow = estimate_speed(model, fit, machine, ram=RamBandwidth(20e9), context_tokens=1)
    assert 3.5 * slow.decode_tps < fast.decode_tps <= 4 * slow.decode_tps  # bandwidth-bound, plus fixed costs
    assert fast.basis == "estimate" and "measured" in fast.sources[0]
    unknown = estimate_speed(model, fit, machine, context_tokens=1)
    assert unknown.basis == "assumed"


def test_unknown_gpu_is_an_assumed_estimate():
    machine = rtx("Matrox G200eW")
    fit = place(CAT.get("qwen3.5:4b"), 16384, machine)
    speed = estimate_speed(CAT.get("qwen3.5:4b"), fit, machine)
    assert speed.basis == "assumed" and "not in the bandwidth table" in speed.sources[0]


def test_measured_figure_replaces_the_estimate():
    model, machine = CAT.get("qwen3.5:27b"), rtx()
    fit = place(model, 65536, machine)
    speed = estimate_speed(model, fit, machine, measured_tps=41.5)
    assert speed.basis == "measured" and speed.decode_tps == 41.5
    assert speed.estimated_tps is not None and speed.estimated_tps != 41.5


def test_prompt_processing_is_compute_bound():
    model, machine = CAT.get("llama3.1:8b"), rtx()
    fit = place(model, 16384, machine)
    short = estimate_speed(model, fit, machine, context_tokens=1)  # the first token attends to nothing
    # 165.2 TFLOPS x 0.8 / (2 x 8.03e9 FLOPs per token)
    assert short.prompt_tps == pytest.approx(165.2e12 * 0.8 / (2 * model.params_active))
    # a 16,384-token prompt: its tokens attend to 8,192 earlier ones on average, 4 x 32 heads x 128 x 32 layers each
    long = estimate_speed(model, fit, machine, context_tokens=16384)
    per_token = 2 * model.params_active + 4 * 32 * 128 * 32 * 8192
    assert long.prompt_tps == pytest.approx(165.2e12 * 0.8 / per_token) and long.prompt_tps < 0.8 * short.prompt_tps


def test_model_that_does_not_fit_has_no_speed():
    speed = estimate_for(CAT.get("qwen3-coder:480b"), rtx(), num_ctx=16384)
    assert speed.decode_tps is None and speed.ceiling_tps is None and speed.prompt_tps is None


def test_ram_probe_measures_and_caches(tmp_path):
    probe = measure_ram_bandwidth(seconds=0.02, threads=2)
    assert probe.bytes_per_s > 1e8 and probe.threads == 2
    first = cached_ram_bandwidth(tmp_path, seconds=0.02)
    saved = json.loads((tmp_path / CACHE_NAME).read_text())
    assert saved["bytes_per_s"] == first.bytes_per_s
    again = cached_ram_bandwidth(tmp_path, seconds=0.02)
    assert again.measured_at == first.measured_at  # read back, not measured again
    (tmp_path / CACHE_NAME).write_text("not json")
    assert cached_ram_bandwidth(tmp_path, seconds=0.02).bytes_per_s > 0  # a broken cache is re-measured

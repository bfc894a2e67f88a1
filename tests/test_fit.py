"""Memory fit: the need (weights + KV + compute), placement on GPUs / unified memory / CPU, the context search.

Expected figures are computed by hand and written literally; the comments show the arithmetic.
"""

from __future__ import annotations

import dataclasses

import pytest

from localcodex.core.recommend.context import choose_context, max_context
from localcodex.core.recommend.fit import (
    CONTEXT_STEP,
    FIT_MARGIN,
    Settings,
    auto_batch,
    compute_bytes,
    memory_need,
    place,
)
from localcodex.domain.catalog import load_catalog
from localcodex.domain.machine import GPU, Budget, Machine

GiB = 1024**3
MiB = 1024**2
CAT = load_catalog()


def gpu_machine(*budgets: int, name: str = "NVIDIA GeForce RTX 4090", ram: int = 48 * GiB) -> Machine:
    gpus = tuple(GPU(i, "nvidia", name, b, b, "cuda") for i, b in enumerate(budgets))
    return Machine("linux", "x86_64", "cpu", 16, 32, ("avx2",), 64 * GiB, ram, gpus=gpus,
                   budget=Budget(tuple(budgets), ram, "test budget"))  # fmt: skip


def apple_machine(working_set: int, ram: int, name: str = "Apple M3 Max") -> Machine:
    gpu = GPU(0, "apple", name, working_set, working_set, "metal", integrated=True, unified_memory=True)
    return Machine("darwin", "arm64", name, 12, 12, ("neon",), ram, ram, gpus=(gpu,),
                   budget=Budget((working_set,), ram, "test budget", unified=True))  # fmt: skip


def cpu_machine(ram: int) -> Machine:
    return Machine("linux", "x86_64", "cpu", 8, 16, ("avx2",), ram, ram, budget=Budget((), ram, "test budget"))


# -- KV cache through the fit, three architectures, by hand ----------------------------------------------


def test_kv_cache_gqa_dense_llama31_8b():
    # 32 layers x 8 KV heads x (128 + 128) x 2 B = 131,072 B/token; x 32,768 tokens = 4 GiB exactly
    need = memory_need(CAT.get("llama3.1:8b"), 32768)
    assert need.kv_cache == 4_294_967_296
    # q8_0: 34 bytes per 32 values -> 131,072 x 34/64 = 69,632 B/token; x 32,768 = 2,281,701,376
    need_q8 = memory_need(CAT.get("llama3.1:8b"), 32768, Settings(kv_cache_type="q8_0"))
    assert need_q8.kv_cache == 2_281_701_376
    # two parallel slots double the cells
    assert memory_need(CAT.get("llama3.1:8b"), 32768, Settings(num_parallel=2)).kv_cache == 8_589_934_592


def test_kv_cache_moe_qwen3_coder_30b():
    # 48 layers x 4 KV heads x (128 + 128) x 2 B = 98,304 B/token; x 65,536 = 6,442,450,944 (6 GiB)
    need = memory_need(CAT.get("qwen3-coder:30b"), 65536)
    assert need.kv_cache == 6_442_450_944


def test_kv_cache_hybrid_qwen35_27b_and_parallel_forced_to_one():
    # only every 4th of 64 layers has full attention: 16 x 4 x (256 + 256) x 2 B = 65,536 B/token
    # x 65,536 tokens = 4,294,967,296, plus the fixed Gated-DeltaNet state of the 48 linear layers:
    # 48 x 4 x ((4-1) x (6144 + 2 x 16 x 128) + 128 x 6144) = 156,893,184
    need = memory_need(CAT.get("qwen3.5:27b"), 65536)
    assert need.kv_cache == 4_294_967_296 + 156_893_184
    # Ollama forces OLLAMA_NUM_PARALLEL to 1 for qwen35: asking for 4 changes nothing
    forced = memory_need(CAT.get("qwen3.5:27b"), 65536, Settings(num_parallel=4))
    assert forced.parallel == 1 and forced.kv_cache == need.kv_cache


def test_quantized_cache_needs_flash_attention():
    off = Settings.from_env({"OLLAMA_KV_CACHE_TYPE": "q4_0", "OLLAMA_FLASH_ATTENTION": "0"})
    on = Settings.from_env({"OLLAMA_KV_CACHE_TYPE": "q4_0"})
    assert (off.kv_cache_type, on.kv_cache_type) == ("f16", "q4_0")
    assert off.notes and "flash attention" in off.notes[0]
    # q4_0: 18 bytes per 32 values -> llama3.1:8b 131,072 x 18/64 = 36,864 B/token x 32,768 = 1,207,959,552
    assert memory_need(CAT.get("llama3.1:8b"), 32768, on).kv_cache == 1_207_959_552


# -- compute buffer and Ollama's automatic batch ----------------------------------------------------------


def test_compute_buffer_follows_the_automatic_batch():
    model = CAT.get("qwen3.5:27b")
    # 4 B x 2,048 x (248,320 vocab + 4 x 5,120) = 2,202,009,600 -- Ollama's own surcharge for batch 2048 is 2 GiB
    assert compute_bytes(model, 2048, 65536, None) == 2_202_009_600
    # flash attention off materializes the scores: + 4 B x 512 x 65,536 x 24 heads
    assert compute_bytes(model, 512, 65536, False) == 4 * 512 * (248_320 + 20_480) + 4 * 512 * 65_536 * 24
    assert auto_batch(4096, 10, 100) == 512
    assert auto_batch(32768, 10, 100) == 1024
    assert auto_batch(32769, 10, 100) == 2048
    assert auto_batch(65536, 61, 100) == 1024  # pre-flight above 60% of available: steps down
    assert auto_batch(65536, 76, 100) == 512


# -- comparison with the figures of the fact sheet, section 4 --------------------------------------------


@pytest.mark.parametrize("num_ctx", [4096, 32768, 65536])
def test_our_need_is_never_below_ollamas_preflight_for_plain_gqa_models(num_ctx):
    """Ollama admits a model on `file size + 2·blocks·kv_heads(min)·(embd/heads)·ctx·2` (§4.3 PredictServerVRAM),
    which leaves out the compute buffer; for models where every layer is full attention our KV equals its KV,
    so our need must be larger by exactly the compute buffer."""
    for tag in ("llama3.1:8b", "qwen2.5-coder:7b"):
        model = CAT.get(tag)
        if model.context_length < num_ctx:
            continue
        need = memory_need(model, num_ctx)
        assert need.weights + need.kv_cache == need.ollama_preflight, tag
        assert need.total == need.ollama_preflight + need.compute


def test_ollamas_preflight_undercounts_when_head_width_is_not_embedding_over_heads():
    # qwen3-coder:30b: head_dim 128 but 2,048 / 32 heads = 64, so Ollama's pre-flight counts half the KV:
    # 2 x 48 x 4 x 64 x 65,536 x 2 = 3,221,225,472 against the real 6,442,450,944
    need = memory_need(CAT.get("qwen3-coder:30b"), 65536)
    assert need.ollama_preflight - need.weights == 3_221_225_472
    assert need.kv_cache == 2 * (need.ollama_preflight - need.weights)


def test_hybrid_models_need_less_kv_than_ollamas_preflight_counts():
    # gemma3:27b: 62 layers counted as global by Ollama (666,624 B/token at f16); llama.cpp caches only the
    # 10 global layers in full and the 52 sliding ones for 1,024 + 512 tokens
    need = memory_need(CAT.get("gemma3:27b"), 65536)
    assert need.kv_cache < need.ollama_preflight - need.weights
    assert need.ollama_preflight - need.weights == 666_624 * 65536


def test_qwen35_27b_matches_ollamas_18_gb_vram_figure():
    """Ollama's docs: `qwen3.5:27b` "~18 GB VRAM" (docs/integrations/nemoclaw.mdx), at its default context
    (4,096 below 24 GiB of VRAM). Ours: 17.0 GB weights + 16 x 4 x 512 x 2 x 4,096 B KV (268 MB) + 157 MB
    state + 4 x 512 x 268,800 B compute (550 MB) = 17.98 GB before reserves."""
    need = memory_need(CAT.get("qwen3.5:27b"), 4096)
    assert need.total == 17_000_000_000 + 268_435_456 + 156_893_184 + 550_502_400
    assert 17.5e9 <= need.total <= 18.5e9


def test_gemma4_latest_at_131072_tokens_against_ollama_ps_9_6_gb():
    """Ollama's docs show `gemma4:latest  9.6 GB  100% GPU  131072` in `ollama ps` (docs/context-length.mdx).
    Our estimate is higher, never lower: it counts the whole 9.6 GB file (vision and audio encoders and
    per-layer embeddings included, which Ollama's engine does not report as loaded) plus a 2,048-token
    compute buffer of 4 x 2,048 x (262,144 + 4 x 2,560) = 2.23 GB, plus the 4 full-attention layers' KV.
    The docs' figure leaves no room for the KV at all, so it cannot be the whole need; we stay within 1.6x."""
    model = CAT.get("gemma4:latest")
    need = memory_need(model, 131072)
    assert need.compute == 4 * 2048 * (262_144 + 4 * 2_560)
    assert 9.6e9 < need.total < 1.6 * 9.6e9


# -- placement ------------------------------------------------------------------------------------------


def test_one_24_gib_gpu_holds_qwen35_27b_at_65536_with_margin():
    fit = place(CAT.get("qwen3.5:27b"), 65536, gpu_machine(23 * GiB))
    assert fit.placement == "gpu" and fit.full and not fit.slow
    part = fit.parts[0]
    assert part.bytes == fit.need.total + FIT_MARGIN <= part.budget


def test_two_gpus_split_by_layers_each_paying_its_own_reserve_and_compute():
    model = CAT.get("qwen3.5:35b")  # 24 GB of weights: more than one 23 GiB card can hold
    machine = gpu_machine(23 * GiB, 23 * GiB)
    fit = place(model, 65536, machine)
    assert fit.placement == "multi_gpu"
    assert len(fit.parts) == 2
    for part in fit.parts:
        assert part.bytes <= part.budget
        assert part.bytes > fit.need.compute + FIT_MARGIN  # each card: its own compute buffer and margin
    assert sum(p.bytes for p in fit.parts) >= fit.need.resident + 2 * (fit.need.compute + FIT_MARGIN)
    assert abs(sum(p.share for p in fit.parts) - 1.0) < 1e-9


def test_multi_gpu_is_not_pooled_naively():
    """46 GiB of cards cannot hold 45 GiB of weights: each card loses its margin and compute buffer."""
    big = dataclasses.replace(CAT.get("qwen3.5:35b"), download_bytes=45 * GiB)
    fit = place(big, 16384, gpu_machine(23 * GiB, 23 * GiB))
    assert fit.placement != "multi_gpu"


def test_unified_memory_never_adds_gpu_and_ram():
    """36 GB Mac: 27 GiB working set, 30 GiB RAM. A 40 GiB model must not fit in '57 GiB'."""
    machine = apple_machine(27 * GiB, 30 * GiB)
    big = dataclasses.replace(CAT.get("qwen3.5:35b"), download_bytes=40 * GiB)
    assert place(big, 16384, machine).placement == "none"
    fit = place(CAT.get("qwen3.5:35b"), 65536, machine)
    assert fit.placement == "unified" and fit.parts[0].bytes <= 27 * GiB


def test_partial_offload_is_flagged_slow_with_the_fraction_on_the_gpu():
    machine = gpu_machine(int(7.5 * GiB), ram=40 * GiB)
    fit = place(CAT.get("qwen3.5:35b"), 65536, machine)
    assert fit.placement == "partial" and fit.slow and not fit.full
    assert 0.1 < fit.gpu_fraction < 0.5
    cpu = next(p for p in fit.parts if p.device == "cpu")
    assert cpu.bytes <= cpu.budget
    assert "slow" in fit.reason


def test_cpu_only_and_does_not_fit():
    machine = cpu_machine(8 * GiB)
    assert place(CAT.get("qwen3.5:4b"), 16384, machine).placement == "cpu"
    assert place(CAT.get("qwen3.5:4b"), 16384, machine).full
    too_big = place(CAT.get("qwen3.5:27b"), 16384, machine)
    assert too_big.placement == "none" and not too_big.fits and "RAM" in too_big.reason


# -- context --------------------------------------------------------------------------------------------


def test_max_context_is_the_largest_multiple_of_1024_that_fits():
    machine = gpu_machine(23 * GiB)
    model = CAT.get("devstral-small-2:24b")
    fit = max_context(model, machine)
    assert fit is not None and fit.full
    assert fit.need.num_ctx % CONTEXT_STEP == 0
    assert fit.need.num_ctx < model.context_length
    bigger = place(model, fit.need.num_ctx + CONTEXT_STEP, machine)
    assert not bigger.full


def test_max_context_is_capped_by_the_trained_context():
    fit = max_context(CAT.get("qwen2.5-coder:7b"), gpu_machine(80 * GiB))
    assert fit.need.num_ctx == 32768  # trained context, though 80 GiB would hold far more


def test_choose_context_reduces_and_says_so():
    choice = choose_context(CAT.get("devstral-small-2:24b"), gpu_machine(23 * GiB), target=65536)
    assert choice.reduced and choice.num_ctx < 65536
    assert any("do not fit fully" in note for note in choice.notes)


def test_choose_context_pins_the_batch_when_the_automatic_one_is_what_does_not_fit():
    """A 4 GiB container leaves ~1.9 GiB: Ollama's automatic 1,024-token batch would not fit qwen3.5:0.8b at
    16k (compute 4 x 1,024 x (248,320 + 4,096) = 0.96 GiB); pinning num_batch 256 does."""
    machine = cpu_machine(int(1.9 * GiB))
    choice = choose_context(CAT.get("qwen3.5:0.8b"), machine)
    assert choice.fit is not None and choice.num_batch in (512, 256)
    assert choice.fit.need.batch == choice.num_batch
    assert choice.fit.total <= int(1.9 * GiB)
    assert any("num_batch" in note for note in choice.notes)

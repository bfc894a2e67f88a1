"""The packaged model catalog: it loads, it is complete and self-consistent, and its KV maths is right.

KV figures below are computed by hand from the architecture numbers and written literally, so a change in
either the data or the formula shows up here.
"""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from localcodex.domain.catalog import (
    REQUIRED_FIELDS,
    Catalog,
    CatalogError,
    CatalogModel,
    cache_bytes_per_element,
    load_catalog,
    normalize_tag,
    parse_catalog,
)

# Ollama name rules (types/model/name.go): model and tag are alphanumeric plus - _ . (max 80 each).
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}:[a-z0-9][a-z0-9._-]{0,79}$")
KNOWN_CAPABILITIES = {"completion", "tools", "insert", "vision", "embedding", "thinking", "image", "audio"}
# Nominal bits per weight of the quantization types used by Ollama's default tags.
NOMINAL_BITS = {"Q3_K_M": 3.91, "Q4_0": 4.5, "Q4_K_M": 4.85, "Q8_0": 8.5, "MXFP4": 4.25, "F16": 16.0, "BF16": 16.0}

GB = 10**9


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


def model(cat: Catalog, tag: str) -> CatalogModel:
    m = cat.get(tag)
    assert m is not None, f"{tag} missing from the catalog"
    return m


# ---- the file ------------------------------------------------------------------------------------


def test_loads_and_is_dated(cat: Catalog) -> None:
    assert cat.updated == "2026-12-03"
    assert "llama.cpp" in cat.method
    assert load_catalog() is cat  # cached


def test_has_at_least_30_entries(cat: Catalog) -> None:
    assert len(cat) >= 30
    assert len(set(cat.tags)) == len(cat.tags)


def test_packaged_file_has_no_machine_paths() -> None:
    text = files("localcodex").joinpath("data").joinpath("catalog.toml").read_text(encoding="utf-8")
    for needle in ("/home/", "/Users/", "/work/", "/tmp/", "C:\\", "/root/"):
        assert needle not in text


REQUIRED_TAGS = [
    *(f"qwen3.5:{s}" for s in ("0.8b", "2b", "4b", "9b", "27b", "35b", "122b")),
    "qwen3-coder:30b",
    "qwen3-coder:480b",
    *(f"qwen2.5-coder:{s}" for s in ("1.5b", "3b", "7b", "14b", "32b")),
    "gpt-oss:20b",
    "gpt-oss:120b",
    "devstral:24b",
    "devstral-small-2:24b",
    "deepseek-coder-v2:16b",
    "gemma3:4b",
    "gemma3:12b",
    "gemma3:27b",
    *(f"gemma4:{s}" for s in ("e2b", "e4b", "26b", "31b")),
    "llama3.1:8b",
    "llama3.2:3b",
    "llama3.3:70b",
    *(f"qwen3:{s}" for s in ("8b", "14b", "30b", "32b")),
    "glm-4.7-flash",
    "nemotron-3-nano:30b",
]


@pytest.mark.parametrize("tag", REQUIRED_TAGS)
def test_required_tag_present(cat: Catalog, tag: str) -> None:
    model(cat, tag)


# ---- every entry ---------------------------------------------------------------------------------


def entries() -> list[CatalogModel]:
    return list(load_catalog())


@pytest.mark.parametrize("m", entries(), ids=lambda m: m.tag)
def test_entry_fields_and_sources(m: CatalogModel) -> None:
    for name in REQUIRED_FIELDS:
        value = getattr(m, name)
        assert value not in (None, "", ()), f"{m.tag}: {name} is empty"
    assert all(s.strip() for s in m.sources)
    assert any(s.startswith(("size", "tag")) for s in m.sources), f"{m.tag}: no source for the size/tag"
    assert any(s.startswith("arch") for s in m.sources), f"{m.tag}: no source for the architecture"
    assert 1 <= m.coding_tier <= 5
    assert re.search(r"\d", m.coding_source) or "tier from size" in m.coding_source
    assert set(m.capabilities) <= KNOWN_CAPABILITIES
    assert "completion" in m.capabilities
    for name in m.uncertain:
        assert hasattr(m, name) or name == "tag", f"{m.tag}: uncertain names unknown field {name}"
    if m.uncertain:
        assert m.notes, f"{m.tag}: uncertain figures need a note"


@pytest.mark.parametrize("m", entries(), ids=lambda m: m.tag)
def test_tags_are_valid_ollama_names(m: CatalogModel) -> None:
    assert TAG_RE.match(m.tag), m.tag
    assert m.tag.split(":")[0] == m.family
    for alias in m.aliases:
        assert TAG_RE.match(alias), alias
        assert alias.split(":")[0] == m.family


@pytest.mark.parametrize("m", entries(), ids=lambda m: m.tag)
def test_params_and_experts(m: CatalogModel) -> None:
    assert 0 < m.params_active <= m.params_total
    if m.expert_count:
        assert m.is_moe
        assert 0 < m.expert_used_count < m.expert_count
        assert m.params_active < m.params_total / 3
    else:
        assert m.params_active == m.params_total
        assert not m.is_moe


@pytest.mark.parametrize("m", entries(), ids=lambda m: m.tag)
def test_download_size_consistent_with_params_and_bits(m: CatalogModel) -> None:
    effective = m.download_bytes * 8 / m.params_total
    # bits_per_weight is the effective figure: it must agree with size / params.
    assert abs(effective - m.bits_per_weight) / effective < 0.02, (m.tag, effective)
    # ... and be plausible for the quantization (vision towers, F16 embeddings and MXFP4's BF16
    # attention push it up; a 10x typo in size or params cannot pass).
    ratio = effective / NOMINAL_BITS[m.quantization]
    assert 0.5 < ratio < 2.6, (m.tag, effective, m.quantization)


@pytest.mark.parametrize("m", entries(), ids=lambda m: m.tag)
def test_download_display_matches_bytes(m: CatalogModel) -> None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(MB|GB)", m.download_display)
    assert match, m.download_display
    unit = {"MB": 10**6, "GB": 10**9}[match.group(2)]
    assert m.download_bytes == round(float(match.group(1)) * unit)
    assert m.download_bytes < m.download_bytes_max <= m.download_bytes + unit // 2


@pytest.mark.parametrize("m", entries(), ids=lambda m: m.tag)
def test_layer_accounting(m: CatalogModel) -> None:
    total = m.kv_layers + m.sliding_layers + m.recurrent_layers + m.kv_shared_layers + m.ffn_only_layers
    assert total == m.block_count
    assert (m.sliding_window > 0) == (m.sliding_layers > 0)
    assert (m.recurrent_state_bytes > 0) == (m.recurrent_layers > 0)
    assert m.recurrent_state_bytes == m.computed_recurrent_state_bytes()
    assert m.head_count % m.head_count_kv == 0
    assert m.kv_layers > 0
    if m.mla_cache:
        assert m.head_count_kv == 1
        assert m.head_dim_k == m.kv_lora_rank + m.rope_dim
    if not m.is_hybrid:
        assert m.kv_layers == m.block_count


def test_size_range_and_kinds_covered(cat: Catalog) -> None:
    sizes = [m.params_total for m in cat]
    assert min(sizes) <= 1.5 * GB
    assert max(sizes) >= 100 * GB
    assert sum(m.params_total >= 100 * GB for m in cat) >= 3
    assert any(m.is_moe for m in cat) and any(not m.is_moe for m in cat)
    assert any(m.recurrent_layers for m in cat), "no linear-attention hybrid"
    assert any(m.sliding_layers for m in cat), "no sliding-window model"
    assert any(m.kv_shared_layers for m in cat), "no KV-sharing model"
    assert any(m.mla_cache for m in cat), "no MLA model"
    assert sum(m.has_tools for m in cat) >= 25


def test_gemma3_has_no_tools(cat: Catalog) -> None:
    for m in cat.family("gemma3"):
        assert not m.has_tools
    assert model(cat, "gemma4:31b").has_tools


# ---- lookup --------------------------------------------------------------------------------------


def test_get_aliases_and_case(cat: Catalog) -> None:
    assert model(cat, "qwen3.5").tag == "qwen3.5:9b"
    assert model(cat, "QWEN3.5:LATEST").tag == "qwen3.5:9b"
    assert model(cat, "qwen3.5:35b-a3b").tag == "qwen3.5:35b"
    assert model(cat, "gemma4").tag == "gemma4:e4b"
    assert model(cat, "gpt-oss").tag == "gpt-oss:20b"
    assert model(cat, "registry.ollama.ai/library/llama3.1:8b").tag == "llama3.1:8b"
    assert model(cat, "glm-4.7-flash").tag == "glm-4.7-flash:latest"
    assert cat.get("qwen3.5:27b-cloud") is None
    assert cat.get("qwen3.5:1000b") is None
    assert cat.get("gemma3:27b") in cat.family("gemma3")
    assert "qwen3-coder" in cat


def test_normalize_tag() -> None:
    assert normalize_tag(" Devstral ") == "devstral:latest"
    assert normalize_tag("library/gemma3:4b") == "gemma3:4b"
    assert normalize_tag("hf.co/user/repo:Q4_K_M") == "hf.co/user/repo:q4_k_m"
    assert normalize_tag("localhost:5000/foo") == "localhost:5000/foo:latest"


# ---- KV cache: hand-computed values --------------------------------------------------------------


def test_bytes_per_element() -> None:
    assert cache_bytes_per_element("f16") == 2
    assert cache_bytes_per_element("Q8_0") == 34 / 32  # 32 int8 + one f16 scale per block
    assert cache_bytes_per_element("q4_0") == 18 / 32  # 16 bytes of nibbles + one f16 scale
    with pytest.raises(ValueError):
        cache_bytes_per_element("q3_k")


def test_kv_dense_gqa_llama31_8b(cat: Catalog) -> None:
    m = model(cat, "llama3.1:8b")
    # 32 layers x 8 KV heads x 128 x 2 (K+V) x 2 bytes
    assert m.kv_bytes_per_token() == 131072
    assert m.kv_bytes_per_token("q8_0") == 69632  # 32 x 8 x 256 x 1.0625
    assert m.kv_bytes_per_token("q4_0") == 36864  # 32 x 8 x 256 x 0.5625
    assert m.kv_cache_bytes(32768) == 4 * 2**30
    assert m.kv_cache_bytes(32768, parallel=2) == 8 * 2**30
    assert m.ollama_preflight_kv_bytes(32768) == 4 * 2**30  # Ollama's formula is exact here


def test_kv_moe_qwen3_coder_30b(cat: Catalog) -> None:
    m = model(cat, "qwen3-coder:30b")
    # 48 layers x 4 KV heads x 128 x 2 x 2 bytes; experts do not change the cache
    assert m.kv_bytes_per_token() == 98304
    assert m.kv_cache_bytes(65536) == 6 * 2**30
    # Ollama's pre-flight uses embedding_length / head_count = 64 as head width: half the real cache
    assert m.ollama_preflight_kv_bytes(65536) == 3 * 2**30


def test_kv_hybrid_qwen35_27b(cat: Catalog) -> None:
    m = model(cat, "qwen3.5:27b")
    # 16 full-attention layers (every 4th of 64) x 4 KV heads x 256 x 2 x 2 bytes
    assert m.kv_bytes_per_token() == 65536
    # 48 Gated DeltaNet layers x 4 x ((4-1) x (6144 + 2x16x128) + 128 x 6144) bytes of f32 state
    assert m.recurrent_state_bytes == 48 * 4 * (3 * (6144 + 4096) + 128 * 6144) == 156_893_184
    assert m.kv_cache_bytes(32768) == 2 * 2**30 + 156_893_184
    # the MTP block, if the runtime caches it, is a 17th full-attention layer
    assert m.nextn_layers == 1
    assert m.kv_cache_bytes(32768, include_nextn=True) == 17 * 4096 * 32768 + 156_893_184
    # the fixed state does not shrink with a quantized cache
    assert m.kv_cache_bytes(32768, "q8_0") == 16 * 4 * 512 * 34 // 32 * 32768 + 156_893_184
    # counting all 64 layers with 213-wide heads (5120 / 24) would give 3.3x more per token
    full_layer_count = 2 * 64 * 4 * (5120 // 24) * 2
    assert full_layer_count / m.kv_bytes_per_token() > 3.3


def test_kv_mla_glm47_flash_and_legacy_deepseek(cat: Catalog) -> None:
    glm = model(cat, "glm-4.7-flash")
    # MLA latent only, no V: 47 layers x (512 + 64) x 2 bytes
    assert glm.kv_bytes_per_token() == 54144
    assert glm.kv_bytes_per_token("q8_0") == 47 * 576 * 34 / 32
    # Ollama reads the unconverted blob: 20 KV heads of 2048 / 20 = 102
    assert glm.ollama_preflight_kv_bytes(1) == 2 * 47 * 20 * 102 * 2
    ds = model(cat, "deepseek-coder-v2:16b")
    assert ds.uses_mla and not ds.mla_cache
    # legacy GGUF: 27 layers x 16 heads x (192 K + 128 V) x 2 bytes
    assert ds.kv_bytes_per_token() == 276480


def test_kv_sliding_window_gpt_oss_and_gemma(cat: Catalog) -> None:
    oss = model(cat, "gpt-oss:20b")
    # 12 full layers x 8 x 64 x 2 x 2 = 24576 B/token; 12 sliding layers cached for pad256(128 + 512) cells
    assert oss.kv_bytes_per_token() == 24576
    assert oss.sliding_cells(32768) == 768
    assert oss.kv_cache_bytes(32768) == 24576 * 32768 + 24576 * 768
    assert oss.sliding_cells(100) == 256  # never more than the context, then padded
    assert oss.sliding_cells(32768, ubatch=2048) == 2304

    g3 = model(cat, "gemma3:27b")
    # 10 global layers x 16 x 128 x 2 x 2 = 81920 B/token; 52 local layers hold 1536 cells
    assert g3.kv_bytes_per_token() == 81920
    assert g3.kv_cache_bytes(131072) == 81920 * 131072 + 52 * 16 * 256 * 2 * 1536
    assert g3.ollama_preflight_kv_bytes(131072) > 7 * g3.kv_cache_bytes(131072)

    g4 = model(cat, "gemma4:31b")
    # global: 10 x 4 KV heads x (512 + 512) x 2; local: 50 x 16 x 256 x 2 x 2 per cell, 1536 cells
    assert g4.kv_bytes_per_token() == 81920
    assert g4.sliding_kv_bytes_per_cell() == 819200
    assert g4.kv_cache_bytes(8192) == 81920 * 8192 + 819200 * 1536

    e2b = model(cat, "gemma4:e2b")
    # only 15 of 35 layers own a cache: 3 global (1 x 512 x 2 x 2) + 12 local at 512 + 512 -> 1024 cells
    assert e2b.kv_bytes_per_token() == 3 * 1 * 1024 * 2
    assert e2b.kv_cache_bytes(4096) == 6144 * 4096 + 12 * 1 * 512 * 2 * 1024


def test_kv_mamba_hybrid_nemotron(cat: Catalog) -> None:
    m = model(cat, "nemotron-3-nano:30b")
    assert m.kv_bytes_per_token() == 6 * 2 * 256 * 2
    # 23 Mamba-2 layers x 4 x (3 x (4096 + 2 x 8 x 128) + 128 x 4096)
    assert m.recurrent_state_bytes == 49_930_240
    # llama.cpp pads the context to a multiple of 256: 1000 -> 1024 cells
    assert m.kv_cache_bytes(1000, parallel=3) == 3 * (6144 * 1024 + 49_930_240)


def test_kv_cache_argument_checks(cat: Catalog) -> None:
    m = model(cat, "llama3.2:3b")
    with pytest.raises(ValueError):
        m.kv_cache_bytes(0)
    with pytest.raises(ValueError):
        m.kv_cache_bytes(4096, parallel=0)
    with pytest.raises(ValueError):
        m.kv_cache_bytes(4096, "fp8")
    assert m.kv_cache_bytes(8192) == 2 * m.kv_cache_bytes(4096)


# ---- parsing errors ------------------------------------------------------------------------------

MINIMAL = """
updated = "2026-11-25"
[[model]]
tag = "tiny:1b"
family = "tiny"
architecture = "llama"
download_bytes = 800_000_000
download_display = "800MB"
params_total = 1_000_000_000
params_active = 1_000_000_000
quantization = "Q4_K_M"
bits_per_weight = 6.4
block_count = 16
head_count = 32
head_count_kv = 8
head_dim_k = 64
head_dim_v = 64
embedding_length = 2048
kv_layers = 16
context_length = 131072
capabilities = ["completion", "tools"]
license = "test"
coding_tier = 5
coding_source = "none"
sources = ["size: test"]
"""


def test_parse_minimal_entry() -> None:
    c = parse_catalog(MINIMAL)
    m = c.get("TINY:1B")
    assert m is not None and m.kv_bytes_per_token() == 16 * 8 * 128 * 2
    assert m.aliases == () and m.uncertain == () and not m.is_moe and not m.is_hybrid


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.replace('license = "test"\n', ""), "missing field"),
        (lambda s: s + "colour = 3\n", "unknown field"),
        (lambda s: s.replace("block_count = 16", 'block_count = "16"'), "integer"),
        (lambda s: s.replace('updated = "2026-11-25"', 'updated = "late 2026"'), "updated"),
        (lambda s: s + s[s.index("[[model]]") :], "twice"),
        (lambda s: s.replace("[[model]]", "[model]"), r"no \[\[model\]\]"),
        (lambda s: s + "this is = not toml =", "TOML"),
    ],
)
def test_parse_errors(change, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog(change(MINIMAL))

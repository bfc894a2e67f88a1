"""The speed model against published measurements (tests/data/speed_measurements.toml): within 0.7-1.3x."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcodex.core.recommend.chips import is_unified, lookup, vendor_of
from localcodex.core.recommend.fit import GiB, place
from localcodex.core.recommend.speed import RamBandwidth, estimate_speed
from localcodex.domain.catalog import CatalogModel
from localcodex.domain.machine import GPU, Machine

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DATA = tomllib.loads((Path(__file__).parent / "data" / "speed_measurements.toml").read_text())
CASES = [c for c in DATA["case"] if "excluded" not in c]


def model(key: str) -> CatalogModel:
    m = DATA["models"][key]
    heads = m["heads"]  # query heads: attention compute counts them
    return CatalogModel(
        tag=key, family=key, architecture="llama", download_bytes=m["size"], download_display="",
        params_total=m["params"], params_active=m["params"], quantization="Q4", bits_per_weight=4.5,
        block_count=m["layers"], head_count=heads, head_count_kv=m["kv_heads"], head_dim_k=m["head_dim"],
        head_dim_v=m["head_dim"], embedding_length=heads * m["head_dim"], kv_layers=m["layers"],
        context_length=32768, capabilities=("completion",), license="", coding_tier=5, coding_source="",
        sources=(),
    )  # fmt: skip


def machine(case: dict) -> tuple[Machine, RamBandwidth | None]:
    if case["kind"] == "cpu":
        cpu = Machine("linux", "x86_64", case["hardware"], case["cores"], case["cores"], tuple(case["simd"]),
                      64 * GiB, 60 * GiB)  # fmt: skip
        measured = case.get("ram_measured_gbs") or 0.8 * case["ram_peak_gbs"]
        return cpu, RamBandwidth(measured * 1e9, "test")
    chip = lookup(case["hardware"], case.get("memory_gib", 0) * GiB or None)
    assert chip is not None, case["hardware"]
    vendor, backend = vendor_of(chip)
    memory = case.get("memory_gib", 32) * GiB
    unified = is_unified(chip)
    gpu = GPU(0, vendor, chip.name, memory, memory, backend, integrated=unified, unified_memory=unified)
    return Machine("linux", "x86_64", "cpu", 8, 16, ("avx2",), memory if unified else 64 * GiB,
                   memory if unified else 60 * GiB, gpus=(gpu,)), None  # fmt: skip


def test_the_table_covers_every_kind_of_hardware():
    kinds = {c["kind"] for c in CASES}
    assert len(CASES) >= 12
    assert {"nvidia", "amd", "amd-apu", "apple", "cpu"} <= kinds
    assert all(c["source"] for c in DATA["case"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['hardware']}|{c['model']}")
def test_estimate_is_within_0_7_to_1_3_of_the_measurement(case):
    m = model(case["model"])
    box, ram = machine(case)
    fit = place(m, 4096, box)
    assert fit.placement in ("gpu", "unified", "cpu"), fit.reason
    speed = estimate_speed(m, fit, box, ram=ram, context_tokens=128)
    ratio = speed.decode_tps / case["decode_tps"]
    assert 0.7 <= ratio <= 1.3, f"{case['hardware']}: estimate {speed.decode_tps:.1f}, measured {case['decode_tps']}"

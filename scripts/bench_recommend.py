#!/usr/bin/env python3
"""How fast `recommend` answers, what the RAM probe costs, and how far the decode estimate is from published runs.

    python scripts/bench_recommend.py [--runs 9]

1. `recommend()` over every recorded machine of tests/fixtures/machines (detect replayed, no Ollama): median,
   min and max wall time per call.
2. The RAM copy-bandwidth probe (adapters/membw.py): median time and GB/s over the runs.
3. Decode estimate against published llama.cpp measurements on hardware we do not have here (tok/s and the
   ratio estimate / measured; 1.0 is perfect, peers are reported 3-30x off). Sources:
   - brand-o/normiebench#40: MacBook Pro M1 Max 64 GB, llama 3.1 8B Q4_K_M, tg128 46.2 tok/s
   - brand-o/normiebench#3: Mac mini M4 16 GB, llama 3.1 8B Q4_K_M, tg128 20.87 tok/s
   - ggml-org/llama.cpp#27525: M1 Max, a Qwen 27B dense model at 16.34 GB (IQ4_NL), 14.29 tok/s short context
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

GiB = 1024**3
PUBLISHED = (
    # (label, chip name, RAM GiB, catalog tag, measured tok/s, source)
    ("M1 Max, llama3.1:8b", "Apple M1 Max", 64, "llama3.1:8b", 46.2, "normiebench#40"),
    ("M4, llama3.1:8b", "Apple M4", 16, "llama3.1:8b", 20.87, "normiebench#3"),
    ("M1 Max, 27B dense ~17 GB", "Apple M1 Max", 64, "qwen3.5:27b", 14.29, "llama.cpp#27525"),
)


def stats(values: list[float]) -> str:
    return f"median {statistics.median(values):.4f}  min {min(values):.4f}  max {max(values):.4f}"


def bench_recommend(runs: int) -> None:
    from machines import MACHINES, load_machine

    from localcodex.core.recommend.rank import RecommendRequest, recommend
    from localcodex.core.recommend.speed import RamBandwidth

    print(f"recommend() per recorded machine, {runs} runs (seconds):")
    for name in MACHINES:
        machine = load_machine(name)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            result = recommend(RecommendRequest(machine, ram_bandwidth=RamBandwidth(40e9)))
            times.append(time.perf_counter() - start)
        pick = result.pick.model if result.pick else "-"
        print(f"  {name:18} {stats(times)}  pick {pick}")


def bench_probe(runs: int) -> None:
    from localcodex.adapters.membw import measure_ram_bandwidth

    times, rates = [], []
    for _ in range(runs):
        start = time.perf_counter()
        probe = measure_ram_bandwidth()
        times.append(time.perf_counter() - start)
        rates.append(probe.bytes_per_s / 1e9)
    print(f"RAM probe, {runs} runs: seconds {stats(times)}; GB/s median {statistics.median(rates):.1f} "
          f"(min {min(rates):.1f}, max {max(rates):.1f}), {probe.threads} threads")


def bench_accuracy() -> None:
    from localcodex.core.recommend.speed import estimate_for
    from localcodex.domain.catalog import load_catalog
    from localcodex.domain.machine import GPU, Budget, Machine

    catalog = load_catalog()
    print("decode estimate vs published llama.cpp runs (128 tokens of context):")
    ratios = []
    for label, chip, ram_gib, tag, measured, source in PUBLISHED:
        working_set = int(ram_gib * GiB * 0.75)
        gpu = GPU(0, "apple", chip, working_set, working_set, "metal", integrated=True, unified_memory=True)
        machine = Machine("darwin", "arm64", chip, 10, 10, ("neon",), ram_gib * GiB, ram_gib * GiB, gpus=(gpu,),
                          budget=Budget((working_set,), ram_gib * GiB, "bench", unified=True))
        estimate = estimate_for(catalog.get(tag), machine, num_ctx=16384, context_tokens=128).decode_tps
        ratios.append(estimate / measured)
        print(f"  {label:28} measured {measured:6.2f}  estimate {estimate:6.2f}  ratio {estimate / measured:.2f}"
              f"  ({source})")
    print(f"  ratio median {statistics.median(ratios):.2f}, worst {max(ratios, key=lambda r: abs(r - 1)):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    bench_recommend(args.runs)
    bench_probe(args.runs)
    bench_accuracy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

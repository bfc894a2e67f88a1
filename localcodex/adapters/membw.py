"""Measure this machine's RAM bandwidth with plain memory copies, and keep the figure in the data folder.

Why: decoding on the CPU reads every weight once per token, so tokens/s on a CPU-only machine (or for the
CPU-resident part of a partially offloaded model) is set by how fast RAM streams, and no table can know a
laptop's DIMMs, channels and clocks. numpy is not a dependency, so the copies are done with
`ctypes.memmove`, which (being a foreign call) releases the GIL: several threads really copy at once and
the probe sees multi-channel bandwidth, as llama.cpp's decode threads do. A single-threaded copy would
report a fraction of it on anything bigger than a laptop.

Counting: each copy of N bytes reads N and writes N, so it moves 2·N bytes; that is what is reported (the
write-allocate read that some CPUs add is not counted, which errs low). Buffers are 16 MiB per thread (past
most L3 caches) and touched before timing, so page faults are not measured. The timed part runs for about
`seconds` (default 0.1 s); threads start together on a barrier and copy until the deadline.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

CACHE_NAME = "ram-bandwidth.json"
BUFFER_BYTES = 16 * 1024**2
MAX_THREADS = 8


@dataclass(frozen=True)
class BandwidthProbe:
    bytes_per_s: float
    threads: int
    seconds: float
    measured_at: float
    cpu_count: int | None


def _copy_for(threads: int, seconds: float) -> float:
    """Copy on `threads` threads for about `seconds`; bytes moved per second over the whole run."""
    buffers = [(ctypes.create_string_buffer(BUFFER_BYTES), ctypes.create_string_buffer(BUFFER_BYTES))
               for _ in range(threads)]
    for src, dst in buffers:  # touch every page before timing
        ctypes.memset(src, 1, BUFFER_BYTES)
        ctypes.memmove(dst, src, BUFFER_BYTES)
    copies = [0] * threads
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def work(i: int) -> None:
        src, dst = buffers[i]
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            ctypes.memmove(dst, src, BUFFER_BYTES)
            copies[i] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    return 2 * BUFFER_BYTES * sum(copies) / elapsed


def measure_ram_bandwidth(seconds: float = 0.1, threads: int | None = None) -> BandwidthProbe:
    """Copy bandwidth of RAM with `threads` parallel copiers (default: CPU count, at most 8)."""
    count = os.cpu_count()
    threads = max(1, min(threads or count or 1, MAX_THREADS))
    start = time.perf_counter()
    rate = _copy_for(threads, seconds)
    return BandwidthProbe(rate, threads, time.perf_counter() - start, time.time(), count)


def cached_ram_bandwidth(data_dir: Path, *, max_age_days: float = 30.0, seconds: float = 0.1) -> BandwidthProbe:
    """The cached probe result from `data_dir`, measuring (and caching) when absent, stale or unreadable."""
    path = data_dir / CACHE_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        probe = BandwidthProbe(**raw)
        fresh = time.time() - probe.measured_at < max_age_days * 86400
        if fresh and probe.cpu_count == os.cpu_count() and probe.bytes_per_s > 0:
            return probe
    except (OSError, ValueError, TypeError):
        pass
    probe = measure_ram_bandwidth(seconds)
    from localcodex.adapters.files import write_text_atomic
    from localcodex.errors import ConfigError

    with contextlib.suppress(ConfigError):  # a read-only data folder only costs a new 0.1 s probe next time
        write_text_atomic(path, json.dumps(asdict(probe)))
    return probe

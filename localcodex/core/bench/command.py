"""`localcodex bench` and `setup`'s benchmark step: `bench()` on this machine with what the machine adds, the
receipts written as runs complete and the speed model's decode ceiling for "% of ceiling"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from localcodex.core.bench.ceiling import speed_model_ceiling
from localcodex.core.bench.run import (
    SETUP_MAX_RUNS,
    SETUP_NUM_PREDICT,
    SETUP_PROMPT_TOKENS,
    SETUP_RUN_SECONDS,
    BenchRequest,
    bench,
)
from localcodex.core.detect import this_machine
from localcodex.core.ports import Live
from localcodex.core.recommend.fit import Settings
from localcodex.core.recommend.speed import RamBandwidth
from localcodex.domain.bench import BenchEvent, BenchReport, Ceiling
from localcodex.domain.fingerprint import Fingerprint, fingerprint
from localcodex.domain.machine import Machine
from localcodex.errors import LocalcodexError

if TYPE_CHECKING:  # sqlite3 comes with it, imported only when receipts are kept
    from localcodex.adapters.receipts import BenchReceipt


def _ignore(event: BenchEvent) -> None:
    pass



def run_benchmark(request: BenchRequest, live: Live, on_progress: Callable[[BenchEvent], None] = _ignore, *,
                  save: bool = True, machine: Machine | None = None) -> BenchReport:
    """`localcodex bench`: `bench()` on this machine, with receipts written as runs complete and the speed
    model's decode ceiling for "% of ceiling" (a local Ollama only). Receipts that cannot be written, or a
    ceiling that cannot be computed, cost only themselves: the report says so in `warnings`."""
    machine = machine or this_machine(live.inv.env)
    print_ = fingerprint(machine)
    warnings: list[str] = []
    recorder = _receipts(live, print_, warnings) if save else None
    ceiling = _ceiling(request, live, machine, warnings)
    try:
        report = bench(request, on_progress, recorder=recorder, ceiling=ceiling, endpoint=live.bench_endpoint(request))
    finally:
        if recorder is not None:
            recorder.store.close()
    receipt = recorder.session_id if recorder is not None else None
    return replace(report, machine=print_.label, receipt_id=receipt, warnings=tuple(warnings))


def _receipts(live: Live, print_: Fingerprint, warnings: list[str]) -> BenchReceipt | None:
    from localcodex.adapters.receipts import BenchReceipt  # sqlite3, only when receipts are kept

    store = live.receipts()
    try:
        _ = store.conn  # open and migrate now, so a broken file is known before the first run
    except LocalcodexError as exc:
        warnings.append(f"receipts will not be saved: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        return None
    return BenchReceipt(store, print_)


def _ceiling(request: BenchRequest, live: Live, machine: Machine, warnings: list[str]) -> Ceiling | None:
    """The speed model's ceiling, for an Ollama on this machine (other hardware we cannot see)."""
    if request.base_url or not live.inv.host.is_local or machine.remote:
        return None
    try:
        ram = RamBandwidth.probed(live.ram_bandwidth(machine))
        return speed_model_ceiling(machine, live.ollama(), ram=ram, settings=Settings.from_env(live.inv.env))
    except (LocalcodexError, OSError, ValueError) as exc:
        warnings.append(f"no decode ceiling to compare with: {exc}")
        return None


@dataclass(frozen=True)
class SetupBenchmark:
    """What `setup` shows after its benchmark step."""

    decode_tps: float | None  # median, shortest prompt, one request
    prompt_tps: float | None  # median, longest prompt (the agent-sized one, where prefill matters)
    warnings: tuple[str, ...]
    report: BenchReport


def setup_benchmark(model: str, live: Live, *, machine: Machine | None = None,
                    on_progress: Callable[[BenchEvent], None] = _ignore) -> SetupBenchmark:
    """A quick benchmark of one model, as `setup`'s last step (a short and a 2k-token prompt, 48 tokens out,
    at most 3 runs each; `localcodex bench` is the full one): receipts kept, failures become warnings."""
    request = BenchRequest(models=(model,), host=live.inv.host.native, prompt_tokens=SETUP_PROMPT_TOKENS,
                           num_predict=SETUP_NUM_PREDICT, max_runs=SETUP_MAX_RUNS, max_run_seconds=SETUP_RUN_SECONDS)
    report = run_benchmark(request, live, on_progress, machine=machine)
    single = [s for s in report.series if s.parallel == 1]
    decode = next((s.decode_tps.median for s in single if s.decode_tps), None)
    prompt = next((s.prompt_tps.median for s in reversed(single) if s.prompt_tps), None)
    warnings = [*(f"{f.model} ({f.phase}): {f.message}" for f in report.failures), *report.warnings]  # why first
    for m in report.models:
        warnings += list(m.notes) + [n for s in m.series for n in s.notes]
    return SetupBenchmark(decode, prompt, tuple(warnings), report)

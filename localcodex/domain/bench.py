"""What a benchmark produces: runs, series summaries, the report, and the recorder seam receipts implement.

Pure data, shared by core/bench (which makes them), adapters/receipts (which stores them) and render/bench (which
shows them); kept here so none of those imports another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from localcodex.domain.stats import Spread

# -- what the benchmark knows of a model before measuring it ------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    name: str
    digest: str | None = None
    context_length: int | None = None  # num_ctx the model would load with, when known before loading
    notes: tuple[str, ...] = ()


# -- what comes out ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """One request: identity, raw counters (ns, as the server sent them), client timings (s), derived rates."""

    model: str
    digest: str | None
    phase: str  # "warmup" | "calibration" | "measure"
    prompt_target: int
    parallel: int
    run: int  # 1-based within its series; 0 for warm-up and calibration
    slot: int  # 0-based request within a parallel batch
    status: str  # "ok" | "failed"
    error: str | None
    error_code: str | None
    started_at: str
    done_reason: str | None
    load_duration: int | None
    prompt_eval_count: int | None
    prompt_eval_duration: int | None
    eval_count: int | None
    eval_duration: int | None
    total_duration: int | None
    ttft_s: float | None
    wall_s: float | None
    stream_tokens: int
    stream_span_s: float | None  # first streamed token to last
    prompt_tps: float | None
    decode_tps: float | None
    e2e_tps: float | None
    stream_tps: float | None  # decode rate from token arrivals, first token excluded (a client-side check)
    aggregate_tps: float | None  # tokens of the whole batch / its wall time (= e2e_tps when parallel is 1)
    batch_wall_s: float | None  # the batch's wall time: first request sent to last byte received
    source: str  # whose figures the rates are: "ollama" / "llama.cpp" (the server's counters) or "client" (SOURCES)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class SeriesSummary:
    """The measured runs of one model at one prompt size and one parallel level."""

    model: str
    digest: str | None
    prompt_target: int
    prompt_tokens: int | None  # median tokens the server evaluated
    parallel: int
    num_predict: int
    status: str
    runs: int  # measured runs (batches of `parallel` requests) made
    runs_ok: int  # requests that succeeded (runs x parallel when all did)
    runs_failed: int
    early_stop: bool
    decode_tps: Spread | None
    prompt_tps: Spread | None
    ttft_s: Spread | None
    e2e_tps: Spread | None
    aggregate_tps: Spread | None  # one value per batch
    eval_tokens: int | None
    concurrency: float | None  # sum of decode times / batch wall time (about `parallel` when truly concurrent)
    ceiling_tps: float | None
    pct_of_ceiling: float | None
    error: str | None
    notes: tuple[str, ...] = ()
    source: str | None = None  # whose figures (see SOURCES; "mixed" when runs differ); None: no run succeeded


# Whose figures a run's rates are, as the output names them.
SOURCES = {
    "ollama": "Ollama's own counters (eval_count / eval_duration)",
    "llama.cpp": "llama.cpp's own timings (prompt_n / prompt_ms, predicted_n / predicted_ms)",
    "client": "client timing (prompt tokens / TTFT, a lower bound; decode from token arrival times)",
}


@dataclass(frozen=True)
class ModelBench:
    model: str
    digest: str | None
    status: str
    context_length: int | None  # the context the loaded model runs with
    gpu_fraction: float | None  # share of the model in GPU memory (from /api/ps)
    warmup: RunResult | None
    calibration: RunResult | None
    series: tuple[SeriesSummary, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Failure:
    model: str
    phase: str
    prompt_target: int
    parallel: int
    run: int
    code: str
    message: str


@dataclass(frozen=True)
class BenchReport:
    status: str  # "ok" | "failed"
    api: str  # "ollama" | "openai"
    endpoint: str
    endpoint_local: bool
    server_version: str | None
    settings: dict[str, Any]
    models: tuple[ModelBench, ...]
    runs: tuple[RunResult, ...]  # every request in order, warm-ups and calibrations included
    failures: tuple[Failure, ...]
    started_at: str
    finished_at: str
    machine: str | None = None  # fingerprint label of the machine that ran the benchmark
    receipt_id: int | None = None  # the receipts session (None with save=False, or when receipts are unusable)
    warnings: tuple[str, ...] = ()

    @property
    def series(self) -> tuple[SeriesSummary, ...]:
        return tuple(s for m in self.models for s in m.series)


@dataclass(frozen=True)
class BenchStart:
    """Handed to the recorder before the first request."""

    api: str
    endpoint: str
    endpoint_local: bool
    server_version: str | None
    settings: dict[str, Any]
    models: tuple[ModelInfo, ...]


@dataclass(frozen=True)
class BenchEvent:
    """Progress for people (`message`) and for `--json` event lines (the rest)."""

    kind: str  # "start" | "warmup" | "calibration" | "run" | "series" | "note" | "failed"
    message: str
    model: str | None = None
    run: RunResult | None = None
    summary: SeriesSummary | None = None


class BenchRecorder(Protocol):
    """Where results go as they happen (the receipts store); each call must make its data durable."""

    def started(self, start: BenchStart) -> None: ...
    def run_done(self, run: RunResult) -> None: ...
    def series_done(self, summary: SeriesSummary) -> None: ...
    def finished(self, report: BenchReport) -> None: ...
    def aborted(self, reason: str) -> None: ...


# The bandwidth-bound decode ceiling: (model, num_ctx it runs with, tokens in its cache) -> tok/s or None.
Ceiling = Callable[[str, "int | None", int], "float | None"]

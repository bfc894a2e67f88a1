"""`localcodex bench`: tokens per second a user can trust, for Ollama or any OpenAI-compatible endpoint.

Method (and why):

* **Server counters first.** On Ollama the rates come from the server's own nanosecond counters
  (`prompt_eval_count / prompt_eval_duration`, `eval_count / eval_duration`), which exclude network, queueing
  and the client; the client adds what only it can see: wall time to the first token (TTFT: load + prefill +
  first step + transport, what a user waits) and end-to-end tokens/s. On an OpenAI-compatible endpoint there
  are no counters, so decode is timed from token arrivals (`received_at` of each SSE event), the first token
  excluded, and the prompt rate is approximated as prompt tokens / TTFT (a lower bound: TTFT also holds one
  decode step and the round trip).
* **A warm-up that is reported, not counted.** The first request loads the model (`load_duration`, cold TTFT);
  it is shown on its own line and never mixed into the medians. `keep_alive` keeps the model loaded.
* **Fixed work.** temperature 0, seed 42, a fixed `num_predict`, and a prompt asking for a long enumeration;
  `done_reason` tells when a model stopped early anyway (then the note says so).
* **Median and spread, stopping when the answer is known.** Up to 5 measured runs per series; the series stops
  after 3 when decode, prefill (prompts of 256 tokens or more) and TTFT agree within 2 % of their median,
  (max - min) / median < 0.02, TTFT also when within 5 ms. `runs=N` runs exactly N, no early stop.
* **Prompt sizes that match an agent.** A short prompt and an agent-sized one (8k tokens by default), built
  to the model's own tokenizer (see `benchprompt`), capped at the loaded context minus `num_predict` so the
  server never truncates silently; a nonce at the start of each prompt defeats the prefix cache.
* **Failures are results.** A request that fails (HTTP 500, a reset, a stall past the timeout) becomes a failed
  run with its reason; its series stops, the others go on (all stop when the server is gone), the report's
  status is "failed", and everything measured up to then is kept and recorded as it happens.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Protocol

from localcodex.core.bench import prompt as benchprompt
from localcodex.core.bench.stats import Spread, is_tight, spread
from localcodex.core.bench.targets import (
    Endpoint,
    Loaded,
    ModelInfo,
    OllamaEndpoint,
    OpenAIEndpoint,
    Sample,
)
from localcodex.domain.machine import Machine
from localcodex.errors import LocalcodexError, OllamaUnavailable, UsageError

DEFAULT_PROMPT_TOKENS = (benchprompt.SHORT, 8192)
DEFAULT_NUM_PREDICT = 128
DEFAULT_MAX_RUNS = 5
WARMUP_PREDICT = 16  # enough steps to warm the decode path; the warm-up is about load and cold TTFT
LONG_PROMPT = 256  # prefill of fewer tokens takes too little time to judge a spread by
CONTEXT_MARGIN = 16  # tokens kept free below num_ctx besides num_predict (nonce and template variance)
RELOAD_SECONDS = 0.1  # a measured run with more load time than this found the model unloaded
SETUP_PROMPT_TOKENS = (benchprompt.SHORT, 2048)  # setup's quick benchmark: seconds, not a minute
SETUP_NUM_PREDICT = 48
SETUP_MAX_RUNS = 3
SETUP_RUN_SECONDS = 60.0  # setup must finish in minutes: its long prompt shrinks to what prefills in a minute
TTFT_FLOOR_S = 0.005  # TTFT values this close agree, however small they are
SERIAL_CONCURRENCY = 1.3  # below this, a parallel batch was decoded one request after another


# -- what goes in -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchRequest:
    models: tuple[str, ...]
    prompt_tokens: tuple[int, ...] = DEFAULT_PROMPT_TOKENS  # 0 = the short prompt as it is
    num_predict: int = DEFAULT_NUM_PREDICT
    runs: int | None = None  # exactly this many measured runs per series; None = up to max_runs, early stop
    parallel: tuple[int, ...] = (1,)
    host: str | None = None  # Ollama (`--host`, OLLAMA_HOST)
    base_url: str | None = None  # any OpenAI-compatible endpoint instead (…/v1)
    env_key: str | None = None  # name of the variable holding the endpoint's API key (the key is never kept)
    keep_alive: str = "10m"
    seed: int = 42
    timeout: float = 120.0  # seconds without a byte (plus the expected prefill) before a run counts as failed
    max_runs: int = DEFAULT_MAX_RUNS
    max_run_seconds: float | None = None  # shrink a prompt whose run would take longer (setup's time budget)

    def settings(self) -> dict[str, Any]:
        """What was asked, for the report and the receipts (no key)."""
        return {
            "prompt_tokens": list(self.prompt_tokens), "num_predict": self.num_predict, "runs": self.runs,
            "max_runs": self.max_runs, "parallel": list(self.parallel), "seed": self.seed, "temperature": 0,
            "keep_alive": self.keep_alive, "timeout": self.timeout, "max_run_seconds": self.max_run_seconds,
            "env_key": self.env_key,
        }


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
    source: str  # "server": rates from the server's counters; "client": from timestamps and usage

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


# -- from a sample to a run --------------------------------------------------------------------------------------


def _rate(count: int | None, seconds: float | None) -> float | None:
    return count / seconds if count and seconds and seconds > 0 else None


def _stream_rate(sample: Sample) -> float | None:
    """Decode rate from token arrivals: chunks after the first over the time they took."""
    if sample.chunks < 2 or sample.first_at is None or sample.last_at is None:
        return None
    return _rate(sample.chunks - 1, sample.last_at - sample.first_at)


def _client_decode(sample: Sample) -> float | None:
    """Like `_stream_rate`, scaled by tokens per chunk when usage says a chunk held more than one token."""
    rate = _stream_rate(sample)
    if rate is None or not sample.completion_tokens or sample.completion_tokens <= sample.chunks:
        return rate
    return rate * sample.completion_tokens / sample.chunks


def _rates(sample: Sample, has_counters: bool) -> dict[str, float | None]:
    c = sample.counters
    ttft = sample.first_at - sample.started if sample.first_at is not None else None
    wall = sample.ended - sample.started
    if has_counters:
        prompt = _rate(c.get("prompt_eval_count"), (c.get("prompt_eval_duration") or 0) / 1e9)
        decode = _rate(c.get("eval_count"), (c.get("eval_duration") or 0) / 1e9)
    else:
        prompt, decode = _rate(sample.prompt_count, ttft), _client_decode(sample)
    tokens = sample.completion_tokens or sample.chunks
    return {"ttft_s": ttft, "wall_s": wall, "prompt_tps": prompt, "decode_tps": decode,
            "e2e_tps": _rate(tokens, wall), "stream_tps": _stream_rate(sample)}


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunKey:
    model: str
    digest: str | None
    phase: str
    prompt_target: int
    parallel: int = 1
    run: int = 0


def make_run(key: RunKey, slot: int, sample: Sample, has_counters: bool, batch: BatchTotals) -> RunResult:
    c = sample.counters
    err = sample.error
    ok = err is None
    return RunResult(
        model=key.model, digest=key.digest, phase=key.phase, prompt_target=key.prompt_target,
        parallel=key.parallel, run=key.run, slot=slot, status="ok" if ok else "failed",
        error=None if ok else err.message, error_code=None if ok else err.code,
        started_at=datetime.fromtimestamp(sample.started_wall, timezone.utc).isoformat(timespec="milliseconds"),
        done_reason=sample.done_reason, load_duration=c.get("load_duration"),
        prompt_eval_count=c.get("prompt_eval_count", sample.prompt_count),
        prompt_eval_duration=c.get("prompt_eval_duration"),
        eval_count=c.get("eval_count", sample.completion_tokens), eval_duration=c.get("eval_duration"),
        total_duration=c.get("total_duration"), stream_tokens=sample.chunks,
        stream_span_s=sample.last_at - sample.first_at if sample.first_at is not None and sample.last_at else None,
        aggregate_tps=batch.tps if ok else None, batch_wall_s=batch.wall_s,
        source="server" if has_counters else "client",
        **_rates(sample, has_counters),
    )


@dataclass(frozen=True)
class BatchTotals:
    tps: float | None  # generated tokens of the whole batch / wall_s (None when a request failed)
    wall_s: float | None


def batch_totals(samples: Sequence[Sample]) -> BatchTotals:
    """The batch's wall time (first send to last byte) and its aggregate throughput."""
    wall = max(s.ended for s in samples) - min(s.started for s in samples)
    if any(s.error for s in samples):
        return BatchTotals(None, wall)
    return BatchTotals(_rate(sum(s.completion_tokens or s.chunks for s in samples), wall), wall)


# -- running requests --------------------------------------------------------------------------------------------


class _Session:
    """The state of one benchmark: every run in order, failures, where results go."""

    def __init__(self, endpoint: Endpoint, request: BenchRequest, recorder: BenchRecorder | None,
                 on_progress: Callable[[BenchEvent], None]) -> None:
        self.endpoint = endpoint
        self.request = request
        self.recorder = recorder
        self.emit = on_progress
        self.runs: list[RunResult] = []
        self.failures: list[Failure] = []
        self.server_gone = False

    def batch(self, key: RunKey, prompts: Sequence[str], num_predict: int, timeout: float) -> list[RunResult]:
        """Send `prompts` at once (one thread each when more than one) and record each run as it completes."""
        with _no_gc():
            if len(prompts) == 1:
                samples = [self.endpoint.measure(key.model, prompts[0], num_predict, self.request.seed, timeout)]
            else:
                samples = _concurrently(self.endpoint, key.model, prompts, num_predict, self.request.seed, timeout)
        totals = batch_totals(samples)
        self.server_gone = self.server_gone or any(isinstance(s.error, OllamaUnavailable) for s in samples)
        runs = [make_run(key, slot, s, self.endpoint.has_counters, totals) for slot, s in enumerate(samples)]
        for run in runs:
            self._record(run)
        return runs

    def _record(self, run: RunResult) -> None:
        self.runs.append(run)
        if self.recorder is not None:
            self.recorder.run_done(run)
        if not run.ok:
            self.failures.append(Failure(run.model, run.phase, run.prompt_target, run.parallel, run.run,
                                         run.error_code or "error", run.error or "failed"))
        self.emit(BenchEvent("run" if run.ok else "failed", _describe(run), run.model, run=run))


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """No garbage-collection pause inside a timed request (as `timeit` does); collected right after instead."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _concurrently(endpoint: Endpoint, model: str, prompts: Sequence[str], num_predict: int, seed: int,
                  timeout: float) -> list[Sample]:
    """One thread per prompt, released together by a barrier so the requests really overlap."""
    barrier = threading.Barrier(len(prompts))
    results: list[Sample | None] = [None] * len(prompts)

    def work(i: int) -> None:
        try:
            endpoint.prepare(timeout)  # each thread's own HTTP client, built before the clock starts
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=timeout)
            results[i] = endpoint.measure(model, prompts[i], num_predict, seed, timeout)
        except Exception as exc:  # a bug must not take the other requests down; it becomes a failed run
            results[i] = Sample(0.0, time.perf_counter(), time.time(),
                                LocalcodexError(f"internal error: {type(exc).__name__}: {exc}", code="internal"))

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def _describe(run: RunResult) -> str:
    where = f"{run.model} · {run.phase}"
    if run.phase == "measure":
        where += f" · {run.prompt_eval_count or run.prompt_target} tok prompt · run {run.run}"
        if run.parallel > 1:
            where += f" · request {run.slot + 1}/{run.parallel}"
    if not run.ok:
        return f"{where}: failed: {run.error}"
    parts = [f"decode {run.decode_tps:.1f} tok/s" if run.decode_tps else None,
             f"prompt {run.prompt_tps:.0f} tok/s" if run.prompt_tps else None,
             f"TTFT {run.ttft_s * 1000:.0f} ms" if run.ttft_s is not None else None,
             f"load {run.load_duration / 1e9:.2f} s" if run.phase == "warmup" and run.load_duration else None]
    return f"{where}: " + ", ".join(p for p in parts if p)


# -- the plan for one model --------------------------------------------------------------------------------------


def plan_sizes(targets: Sequence[int], context: int | None, num_predict: int) -> tuple[list[int], list[str]]:
    """Prompt sizes to run, ascending, capped so prompt + num_predict fit the context the model runs with.

    >>> plan_sizes([0, 8192, 32768], 16384, 128)
    ([0, 8192, 16240], ['32768-token prompt capped at 16240: the model runs with a 16384-token context'])
    >>> plan_sizes([0, 8192], None, 128)
    ([0, 8192], [])
    """
    limit = context - num_predict - CONTEXT_MARGIN if context else None
    sizes: list[int] = []
    notes: list[str] = []
    for target in sorted(set(targets)):
        size = target
        if limit is not None and target > limit:
            size = max(limit, benchprompt.SHORT)
            notes.append(f"{target}-token prompt capped at {size}: the model runs with a {context}-token context")
        if size not in sizes:
            sizes.append(size)
    return sizes, notes


def fit_budget(sizes: Sequence[int], seconds: float, prompt_rate: float | None, decode_rate: float | None,
               num_predict: int) -> tuple[list[int], list[str]]:
    """Prompt sizes whose run fits in `seconds` at the rates the warm-up and calibration showed; a size that
    does not is cut to what fits (in steps of 256 tokens), or dropped when not even 256 would.

    >>> fit_budget([0, 8192], 60.0, 100.0, 20.0, 128)
    ([0, 5120], ['8192-token prompt cut to 5120 to keep a run under 60 s (prefill 100 tok/s)'])
    >>> fit_budget([0, 8192], 60.0, 2000.0, 20.0, 128)
    ([0, 8192], [])
    """
    if not prompt_rate:
        return list(sizes), []
    decode_s = num_predict / decode_rate if decode_rate else 0.0
    kept: list[int] = []
    notes: list[str] = []
    for size in sizes:
        if size <= LONG_PROMPT or size / prompt_rate + decode_s <= seconds:
            kept.append(size)
            continue
        fits = int(max(0.0, seconds - decode_s) * prompt_rate) // 256 * 256
        if fits >= LONG_PROMPT and fits not in kept:
            kept.append(fits)
            notes.append(f"{size}-token prompt cut to {fits} to keep a run under {seconds:g} s "
                         f"(prefill {prompt_rate:.0f} tok/s)")
        else:
            notes.append(f"{size}-token prompt left out: a run would take over {seconds:g} s "
                         f"(prefill {prompt_rate:.0f} tok/s)")
    return kept, notes


def _timeout(request: BenchRequest, prompt_tokens: int, prompt_rate: float | None, parallel: int) -> float:
    """Seconds a run may wait for a byte: the base timeout plus three times the expected prefill of the batch."""
    expected = prompt_tokens / prompt_rate if prompt_rate else 0.0
    return request.timeout + 3.0 * expected * parallel


def _bench_model(session: _Session, info: ModelInfo, ceiling: Ceiling | None) -> ModelBench:
    request, endpoint = session.request, session.endpoint
    key = RunKey(info.name, info.digest, "warmup", benchprompt.SHORT)
    session.emit(BenchEvent("warmup", f"{info.name}: warm-up (loads the model)", info.name))
    warm = session.batch(key, [benchprompt.build(0, benchprompt.nonce())], WARMUP_PREDICT,
                         request.timeout + 600.0)[0]
    if not warm.ok:
        return ModelBench(info.name, info.digest, "failed", info.context_length, None, warm, None, ())
    loaded = endpoint.loaded(info.name)
    context = (loaded.context_length if loaded else None) or info.context_length
    notes = [*info.notes, *_placement_notes(loaded)]
    sizes, size_notes = plan_sizes(request.prompt_tokens, context, request.num_predict)
    notes += size_notes
    calib, calib_run = _calibrate(session, info, warm, max(sizes))
    if calib.per_unit is None and max(sizes) > calib.base:
        notes.append("the server reports no prompt token counts: long prompts cannot be sized, only the short "
                     "prompt was measured")
        sizes = [benchprompt.SHORT]
    prompt_rate = (calib_run.prompt_tps if calib_run else None) or warm.prompt_tps
    if request.max_run_seconds:
        sizes, budget_notes = fit_budget(sizes, request.max_run_seconds, prompt_rate,
                                         warm.decode_tps or warm.stream_tps, request.num_predict)
        notes += budget_notes
    series: list[SeriesSummary] = []
    for size in sizes:
        for parallel in request.parallel:
            if session.server_gone:
                break
            summary = _series(session, info, size, parallel, calib, prompt_rate,
                              _ceiling_at(ceiling, info.name, context, size, request.num_predict))
            series.append(summary)
    failed = any(s.status != "ok" for s in series) or (calib_run is not None and not calib_run.ok)
    return ModelBench(info.name, info.digest, "failed" if failed else "ok", context,
                      loaded.gpu_fraction if loaded else None, warm, calib_run, tuple(series), tuple(notes))


def _placement_notes(loaded: Loaded | None) -> list[str]:
    if loaded is None or loaded.gpu_fraction is None or loaded.gpu_fraction >= 0.999:
        return []
    if loaded.gpu_fraction <= 0.001:
        return ["the model runs on the CPU only (no GPU memory used): decode is bound by RAM bandwidth"]
    return [f"only {loaded.gpu_fraction:.0%} of the model is in GPU memory: the rest runs from RAM, "
            "which bounds decode speed"]


def _calibrate(session: _Session, info: ModelInfo, warm: RunResult,
               largest: int) -> tuple[benchprompt.Calibration, RunResult | None]:
    """Tokens per filler unit on this model's tokenizer, from one short extra request (num_predict 1)."""
    base = warm.prompt_eval_count or 0
    if largest <= base or not base:
        return benchprompt.Calibration(base), None
    units = benchprompt.calibration_units(largest)
    key = RunKey(info.name, info.digest, "calibration", largest)
    session.emit(BenchEvent("calibration", f"{info.name}: sizing prompts to its tokenizer", info.name))
    run = session.batch(key, [benchprompt.build(units, benchprompt.nonce())], 1, session.request.timeout)[0]
    if not run.ok or not run.prompt_eval_count:
        return benchprompt.Calibration(base), run
    return benchprompt.calibrate(base, run.prompt_eval_count, units), run


def _ceiling_at(ceiling: Ceiling | None, model: str, context: int | None, size: int,
                num_predict: int) -> float | None:
    """The ceiling while decoding after a `size`-token prompt (the cache holds the prompt and half the answer).
    A ceiling is a comparison, never a reason to fail a benchmark: any error in it leaves it out."""
    if ceiling is None:
        return None
    try:
        value = ceiling(model, context, max(size, 1) + num_predict // 2)
    except Exception:
        return None
    return value if value and value > 0 else None


def _series(session: _Session, info: ModelInfo, size: int, parallel: int, calib: benchprompt.Calibration,
            prompt_rate: float | None, ceiling_tps: float | None) -> SeriesSummary:
    request = session.request
    units = calib.units_for(size)
    expected_tokens = max(size, calib.base)
    timeout = _timeout(request, expected_tokens, prompt_rate, parallel)
    limit = request.runs or request.max_runs
    batches: list[list[RunResult]] = []
    early = False
    for index in range(1, limit + 1):
        key = RunKey(info.name, info.digest, "measure", size, parallel, index)
        prompts = [benchprompt.build(units, benchprompt.nonce()) for _ in range(parallel)]
        batch = session.batch(key, prompts, request.num_predict, timeout)
        batches.append(batch)
        if not all(r.ok for r in batch):
            break
        if request.runs is None and _settled(batches):
            early = index < limit
            break
    summary = summarize(info, size, parallel, request.num_predict, batches, early, ceiling_tps)
    if session.recorder is not None:
        session.recorder.series_done(summary)
    session.emit(BenchEvent("series", _describe_series(summary), info.name, summary=summary))
    return summary


def _batch_value(batch: Sequence[RunResult], name: str) -> float | None:
    values = [getattr(r, name) for r in batch if getattr(r, name) is not None]
    return statistics.median(values) if values else None


def _settled(batches: Sequence[Sequence[RunResult]]) -> bool:
    """The early-stop rule, over >= 3 batches: decode (and the total when parallel), prefill for prompts of
    256 tokens or more, and TTFT all agree within 2 % of their median (TTFT also within 5 ms, as a time of
    a few ms cannot be known to 2 %)."""
    measures = ["decode_tps"] + (["aggregate_tps"] if len(batches[0]) > 1 else [])
    if (_batch_value(batches[0], "prompt_eval_count") or 0) >= LONG_PROMPT:
        measures.append("prompt_tps")
    rates = all(is_tight([_batch_value(b, m) for b in batches]) for m in measures)
    return rates and is_tight([_batch_value(b, "ttft_s") for b in batches], floor=TTFT_FLOOR_S)


def summarize(info: ModelInfo, size: int, parallel: int, num_predict: int, batches: Sequence[Sequence[RunResult]],
              early: bool, ceiling_tps: float | None = None) -> SeriesSummary:
    runs = [r for b in batches for r in b]
    ok = [r for r in runs if r.ok]
    failed = [r for r in runs if not r.ok]
    decode = spread([r.decode_tps for r in ok])
    ceil = ceiling_tps if parallel == 1 else None  # batched decode may exceed a one-stream ceiling
    pct = 100.0 * decode.median / ceil if decode and ceil else None
    prompt_tokens = spread([r.prompt_eval_count for r in ok])
    eval_tokens = spread([r.eval_count for r in ok])
    return SeriesSummary(
        model=info.name, digest=info.digest, prompt_target=size,
        prompt_tokens=round(prompt_tokens.median) if prompt_tokens else None, parallel=parallel,
        num_predict=num_predict, status="failed" if failed or not ok else "ok", runs=len(batches), runs_ok=len(ok),
        runs_failed=len(failed), early_stop=early, decode_tps=decode,
        prompt_tps=spread([r.prompt_tps for r in ok]), ttft_s=spread([r.ttft_s for r in ok]),
        e2e_tps=spread([r.e2e_tps for r in ok]),
        aggregate_tps=spread([b[0].aggregate_tps for b in batches if all(r.ok for r in b)]),
        eval_tokens=round(eval_tokens.median) if eval_tokens else None,
        concurrency=_concurrency(batches) if parallel > 1 else None,
        ceiling_tps=ceil, pct_of_ceiling=pct, error=failed[0].error if failed else None,
        notes=tuple(_series_notes(ok, size, parallel, num_predict, batches)),
    )


def _concurrency(batches: Sequence[Sequence[RunResult]]) -> float | None:
    """How many requests were busy at once, on average: the sum of their processing times (server prefill +
    decode, or the client's first-to-last token span) over the batch's wall time. About 1 when the server
    took them one after another, about `parallel` when it ran them together."""
    ratios = []
    for batch in batches:
        wall = batch[0].batch_wall_s
        if not wall or not all(r.ok for r in batch):
            continue
        busy = sum(_busy(r) for r in batch)
        if busy:
            ratios.append(busy / wall)
    return statistics.median(ratios) if ratios else None


def _busy(run: RunResult) -> float:
    if run.eval_duration is not None:
        return ((run.prompt_eval_duration or 0) + run.eval_duration) / 1e9
    return run.stream_span_s or 0.0


def _series_notes(ok: Sequence[RunResult], size: int, parallel: int, num_predict: int,
                  batches: Sequence[Sequence[RunResult]]) -> list[str]:
    notes = []
    short = [r for r in ok if r.done_reason and r.done_reason != "length"]
    if short:
        tokens = statistics.median([r.eval_count or r.stream_tokens for r in short])
        notes.append(f"{len(short)} of {len(ok)} runs stopped before num_predict={num_predict} "
                     f"(done_reason {short[0].done_reason}, ~{tokens:.0f} tokens): fewer tokens to time")
    # load_duration also holds the wait for a busy model, so only a lone request's says it was reloaded
    reloads = [r for r in ok if (r.load_duration or 0) / 1e9 > RELOAD_SECONDS] if parallel == 1 else []
    if reloads:
        notes.append(f"the model was loaded again during {len(reloads)} run(s) (evicted by another model?): "
                     "their TTFT includes the load")
    evaluated = statistics.median([r.prompt_eval_count for r in ok if r.prompt_eval_count] or [0])
    if size > LONG_PROMPT and evaluated and evaluated < 0.8 * size:
        notes.append(f"the server evaluated ~{evaluated:.0f} tokens of a ~{size}-token prompt: it cut the prompt "
                     "to fit its context window (or reused a cached prefix)")
    concurrency = _concurrency(batches) if parallel > 1 else None
    if concurrency is not None and concurrency < SERIAL_CONCURRENCY:
        notes.append(f"the {parallel} requests were decoded one after another, not together: the server runs "
                     "one request at a time (OLLAMA_NUM_PARALLEL=1, or a model that forces it)")
    return notes


def _describe_series(s: SeriesSummary) -> str:
    head = f"{s.model} · {s.prompt_tokens or s.prompt_target} tok prompt · parallel {s.parallel}"
    if s.status != "ok" and not s.decode_tps:
        return f"{head}: failed: {s.error}"
    decode = ""
    if s.decode_tps:
        counted = f"{s.decode_tps.n} runs" if s.decode_tps.n == s.runs else f"{s.decode_tps.n} of {s.runs} runs"
        decode = f"decode {s.decode_tps.median:.1f} tok/s (median of {counted})"
    stop = ", stopped early: spread under 2 %" if s.early_stop else ""
    return f"{head}: {decode}{stop}" + (f"; failed: {s.error}" if s.status != "ok" else "")


# -- the entry point ---------------------------------------------------------------------------------------------


def validate(request: BenchRequest) -> None:
    if not request.models:
        raise UsageError("name at least one model to benchmark", "e.g. `localcodex bench qwen3-coder:30b`")
    if request.num_predict < 2:
        raise UsageError("--num-predict must be at least 2 (the decode rate needs two tokens)")
    if request.runs is not None and request.runs < 1:
        raise UsageError("--runs must be at least 1")
    if any(p < 1 or p > 64 for p in request.parallel) or not request.parallel:
        raise UsageError("--parallel takes request counts from 1 to 64, e.g. `--parallel 1,2,4`")
    if any(t < 0 for t in request.prompt_tokens) or not request.prompt_tokens:
        raise UsageError("--prompt-tokens takes token counts, e.g. `--prompt-tokens 512,8192,32768`")


def make_endpoint(request: BenchRequest) -> Endpoint:
    if request.base_url:
        return OpenAIEndpoint(request.base_url, request.env_key)
    return OllamaEndpoint(request.host, request.keep_alive)


def _ignore(event: BenchEvent) -> None:
    return None


def bench(
    request: BenchRequest,
    on_progress: Callable[[BenchEvent], None] = _ignore,
    *,
    recorder: BenchRecorder | None = None,
    ceiling: Ceiling | None = None,
    endpoint: Endpoint | None = None,
) -> BenchReport:
    """Benchmark each model of `request` and return the report; never raises for a failed run.

    Raises (before any run) when the server cannot be reached, a model is not there, or the request is invalid.
    `ceiling(model, num_ctx, context_tokens)` gives the bandwidth-bound decode ceiling in tok/s (None when
    unknown) for "% of ceiling"; it is asked once per series, after the model is loaded.
    `recorder` receives the start, every run as it completes, every series, and the end (or an abort).
    """
    validate(request)
    endpoint = endpoint or make_endpoint(request)
    started = _now_iso()
    version, infos = endpoint.preflight(request.models)
    start = BenchStart(endpoint.api, endpoint.endpoint, endpoint.is_local, version, request.settings(), infos)
    if recorder is not None:
        recorder.started(start)
    session = _Session(endpoint, request, recorder, on_progress)
    on_progress(BenchEvent("start", f"benchmarking {', '.join(request.models)} on {endpoint.endpoint}"))
    try:
        models = [_skipped(info) if session.server_gone else _bench_model(session, info, ceiling) for info in infos]
    except BaseException as exc:
        if recorder is not None:
            recorder.aborted(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        raise
    status = "ok" if not session.failures and all(m.status == "ok" for m in models) else "failed"
    report = BenchReport(status, endpoint.api, endpoint.endpoint, endpoint.is_local, version, request.settings(),
                         tuple(models), tuple(session.runs), tuple(session.failures), started, _now_iso())
    if recorder is not None:
        recorder.finished(report)
    return report


def _skipped(info: ModelInfo) -> ModelBench:
    return ModelBench(info.name, info.digest, "failed", info.context_length, None, None, None, (),
                      ("not measured: the server went away earlier in the benchmark",))


# -- the whole command, and setup's step -------------------------------------------------------------------------


def run_benchmark(request: BenchRequest, on_progress: Callable[[BenchEvent], None] = _ignore, *,
                  save: bool = True, machine: Machine | None = None) -> BenchReport:
    """`localcodex bench`: `bench()` on this machine, with receipts written as runs complete and the speed
    model's decode ceiling for "% of ceiling" (a local Ollama only). Receipts that cannot be written, or a
    ceiling that cannot be computed, cost only themselves: the report says so in `warnings`."""
    from localcodex.core.fingerprint import fingerprint, this_machine

    machine = machine or this_machine()
    print_ = fingerprint(machine)
    warnings: list[str] = []
    recorder = _receipts(print_, warnings) if save else None
    ceiling = _ceiling(request, machine, warnings)
    try:
        report = bench(request, on_progress, recorder=recorder, ceiling=ceiling)
    finally:
        if recorder is not None:
            recorder.store.close()
    receipt = recorder.session_id if recorder is not None else None
    return replace(report, machine=print_.label, receipt_id=receipt, warnings=tuple(warnings))


def _receipts(print_: Any, warnings: list[str]) -> Any:
    from localcodex.adapters.receipts import BenchReceipt, ReceiptStore

    store = ReceiptStore()
    try:
        _ = store.conn  # open and migrate now, so a broken file is known before the first run
    except LocalcodexError as exc:
        warnings.append(f"receipts will not be saved: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        return None
    return BenchReceipt(store, print_)


def _ceiling(request: BenchRequest, machine: Machine, warnings: list[str]) -> Ceiling | None:
    """The speed model's ceiling, for an Ollama on this machine (other hardware we cannot see)."""
    import os

    from localcodex.paths import data_dir, ollama_host

    if request.base_url or not ollama_host(request.host).is_local or machine.remote:
        return None
    try:
        from localcodex.adapters.membw import cached_ram_bandwidth
        from localcodex.core.bench.ceiling import speed_model_ceiling
        from localcodex.core.recommend.fit import Settings
        from localcodex.core.recommend.speed import RamBandwidth

        probe = cached_ram_bandwidth(data_dir())
        ram = RamBandwidth(probe.bytes_per_s, f"measured: memory copy probe, {probe.bytes_per_s / 1e9:.0f} GB/s")
        return speed_model_ceiling(machine, request.host, ram=ram, settings=Settings.from_env(os.environ))
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


def setup_benchmark(model: str, *, host: str | None = None, machine: Machine | None = None,
                    on_progress: Callable[[BenchEvent], None] = _ignore) -> SetupBenchmark:
    """A quick benchmark of one model, as `setup`'s last step (a short and a 2k-token prompt, 48 tokens out,
    at most 3 runs each; `localcodex bench` is the full one): receipts kept, failures become warnings."""
    request = BenchRequest(models=(model,), host=host, prompt_tokens=SETUP_PROMPT_TOKENS,
                           num_predict=SETUP_NUM_PREDICT, max_runs=SETUP_MAX_RUNS, max_run_seconds=SETUP_RUN_SECONDS)
    report = run_benchmark(request, on_progress, machine=machine)
    single = [s for s in report.series if s.parallel == 1]
    decode = next((s.decode_tps.median for s in single if s.decode_tps), None)
    prompt = next((s.prompt_tps.median for s in reversed(single) if s.prompt_tps), None)
    warnings = [*(f"{f.model} ({f.phase}): {f.message}" for f in report.failures), *report.warnings]  # why first
    for m in report.models:
        warnings += list(m.notes) + [n for s in m.series for n in s.notes]
    return SetupBenchmark(decode, prompt, tuple(warnings), report)

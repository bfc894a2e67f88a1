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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from localcodex.adapters.server_facts import Overflow, context_overflow
from localcodex.core.bench import prompt as benchprompt
from localcodex.core.bench.measure import (
    LONG_PROMPT,
    RunKey,
    batch_totals,
    describe_series,
    make_run,
    now_iso,
    settled,
    summarize,
)
from localcodex.core.bench.targets import (
    PREFLIGHT_LIMIT,
    Endpoint,
    Loaded,
    Sample,
)
from localcodex.domain.bench import (
    BenchEvent,
    BenchRecorder,
    BenchReport,
    BenchStart,
    Ceiling,
    Failure,
    ModelBench,
    ModelInfo,
    RunResult,
    SeriesSummary,
)
from localcodex.errors import LocalcodexError, OllamaUnavailable, UsageError

if TYPE_CHECKING:
    pass

DEFAULT_PROMPT_TOKENS = (benchprompt.SHORT, 8192)
DEFAULT_NUM_PREDICT = 128
DEFAULT_MAX_RUNS = 5
WARMUP_PREDICT = 16  # enough steps to warm the decode path; the warm-up is about load and cold TTFT
CONTEXT_MARGIN = 16  # tokens kept free below num_ctx besides num_predict (nonce and template variance)
SETUP_PROMPT_TOKENS = (benchprompt.SHORT, 2048)  # setup's quick benchmark: seconds, not a minute
SETUP_NUM_PREDICT = 48
SETUP_MAX_RUNS = 3
SETUP_RUN_SECONDS = 60.0  # setup must finish in minutes: its long prompt shrinks to what prefills in a minute


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
    warmup_timeout: float | None = None  # total limit of the warm-up (loads the model); None: timeout + 600 s
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
        self.overflow: Overflow | None = None  # the last batch was refused: its prompt exceeds the context

    def batch(self, key: RunKey, prompts: Sequence[str], num_predict: int, timeout: float,
              total: float | None = None) -> list[RunResult]:
        """Send `prompts` at once (one thread each when more than one) and record each run as it completes.
        Each request waits `timeout` for a byte and ends within `total` (default: `timeout` plus a second per
        predicted token, so a server trickling bytes cannot hold a run forever)."""
        limit = total if total is not None else timeout + float(num_predict)
        step = f"bench {key.phase} of {key.model}"
        with _no_gc():
            if len(prompts) == 1:
                samples = [self.endpoint.measure(key.model, prompts[0], num_predict, self.request.seed, timeout,
                                                 total=limit, step=step)]
            else:
                samples = _concurrently(self.endpoint, key.model, prompts, num_predict, self.request.seed, timeout,
                                        limit, step)
        totals = batch_totals(samples)
        self.server_gone = self.server_gone or any(isinstance(s.error, OllamaUnavailable) for s in samples)
        overflows = [o for o in (context_overflow(s.error) for s in samples) if o is not None]
        self.overflow = overflows[0] if overflows else None
        runs = [make_run(key, slot, s, self.endpoint.has_counters, totals) for slot, s in enumerate(samples)]
        for run in runs:
            self._record(run, counts_as_failure=self.overflow is None)
        return runs

    def _record(self, run: RunResult, counts_as_failure: bool = True) -> None:
        """A run refused for its prompt's size is recorded but is no failure: its series is skipped instead."""
        self.runs.append(run)
        if self.recorder is not None:
            self.recorder.run_done(run)
        if not run.ok and counts_as_failure:
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
                  timeout: float, total: float, step: str) -> list[Sample]:
    """One thread per prompt, released together by a barrier so the requests really overlap."""
    barrier = threading.Barrier(len(prompts))
    results: list[Sample | None] = [None] * len(prompts)

    def work(i: int) -> None:
        try:
            endpoint.prepare(timeout)  # each thread's own HTTP client, built before the clock starts
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=timeout)
            results[i] = endpoint.measure(model, prompts[i], num_predict, seed, timeout, total=total, step=step)
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
    warm_limit = request.warmup_timeout if request.warmup_timeout is not None else request.timeout + 600.0
    warm = session.batch(key, [benchprompt.build(0, benchprompt.nonce())], WARMUP_PREDICT, warm_limit,
                         total=warm_limit)[0]
    if not warm.ok:
        return ModelBench(info.name, info.digest, "failed", info.context_length, None, warm, None, ())
    loaded = endpoint.loaded(info.name)
    context = (loaded.context_length if loaded else None) or info.context_length
    notes = [*info.notes, *_placement_notes(loaded)]
    sizes, size_notes = plan_sizes(request.prompt_tokens, context, request.num_predict)
    notes += size_notes
    calib, calib_run = _calibrate(session, info, warm, max(sizes))
    stepped = False  # the context is stepped down once, on the server's own figure in a context-size 400
    if calib_run is not None and session.overflow is not None:
        stepped = True
        context, sizes, step_notes = _step_down(request, session.overflow, sizes, context)
        notes += step_notes
        calib, calib_run = _calibrate(session, info, warm, max(sizes))
        if session.overflow is not None:
            notes.append("the server refused even the calibration prompt for its size: only the short prompt "
                         "was measured")
            sizes, calib_run = [benchprompt.SHORT], None
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
    pending = list(sizes)
    while pending:
        size = pending.pop(0)
        for parallel in request.parallel:
            if session.server_gone:
                break
            summary = _series(session, info, size, parallel, calib, prompt_rate,
                              _ceiling_at(ceiling, info.name, context, size, request.num_predict))
            series.append(summary)
            if summary.status == "skipped" and session.overflow and session.overflow.n_ctx and not stepped:
                stepped = True
                done = {s.prompt_target for s in series if s.status != "skipped"}
                context, replanned, step_notes = _step_down(request, session.overflow, [size, *pending], context)
                notes += step_notes
                pending = [z for z in replanned if z not in done]
                break
    failed = any(s.status == "failed" for s in series) or (calib_run is not None and not calib_run.ok)
    return ModelBench(info.name, info.digest, "failed" if failed else "ok", context,
                      loaded.gpu_fraction if loaded else None, warm, calib_run, tuple(series), tuple(notes))


def _step_down(request: BenchRequest, overflow: Overflow, sizes: Sequence[int],
               context: int | None) -> tuple[int | None, list[int], list[str]]:
    """Sizes re-planned for the context the server named when it refused a prompt as too long."""
    if not overflow.n_ctx or overflow.n_ctx == context:
        kept = [z for z in sizes if z <= LONG_PROMPT]
        return context, kept or [benchprompt.SHORT], [
            "the server refused the longer prompts as over its context without naming the context: "
            f"only prompts up to {max(kept or [benchprompt.SHORT])} tokens were measured"]
    replanned, _ = plan_sizes(sizes, overflow.n_ctx, request.num_predict)
    return overflow.n_ctx, replanned, [
        f"the server refused a prompt as over its {overflow.n_ctx}-token context: prompt sizes were fitted "
        "to it"]


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
        if request.runs is None and settled(batches):
            early = index < limit
            break
    summary = summarize(info, size, parallel, request.num_predict, batches, early, ceiling_tps)
    if session.overflow is not None:  # the server refused this prompt size: skipped, not failed
        where = f" (the server's context: {session.overflow.n_ctx} tokens)" if session.overflow.n_ctx else ""
        summary = replace(summary, status="skipped", notes=(
            *summary.notes, f"skipped: the server refused the ~{size}-token prompt as longer than its context"
            f"{where}"))
    if session.recorder is not None:
        session.recorder.series_done(summary)
    session.emit(BenchEvent("series", describe_series(summary), info.name, summary=summary))
    return summary


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
    from localcodex.domain.names import validate_model_name
    from localcodex.domain.urls import normalize_base_url

    if request.base_url is not None:
        normalize_base_url(request.base_url)  # a credential in the URL, or one Codex could not use: refused
    for model in request.models:
        validate_model_name(model, ollama=not request.base_url)
    if not 0 < request.timeout <= 86400 or (request.warmup_timeout is not None and request.warmup_timeout <= 0):
        raise UsageError(f"--timeout {request.timeout:g} is not a usable limit", "give seconds, e.g. --timeout 60")


def _ignore(event: BenchEvent) -> None:
    return None


def bench(
    request: BenchRequest,
    on_progress: Callable[[BenchEvent], None] = _ignore,
    *,
    recorder: BenchRecorder | None = None,
    ceiling: Ceiling | None = None,
    endpoint: Endpoint,
) -> BenchReport:
    """Benchmark each model of `request` and return the report; never raises for a failed run.

    Raises (before any run) when the server cannot be reached, a model is not there, or the request is invalid.
    `ceiling(model, num_ctx, context_tokens)` gives the bandwidth-bound decode ceiling in tok/s (None when
    unknown) for "% of ceiling"; it is asked once per series, after the model is loaded.
    `recorder` receives the start, every run as it completes, every series, and the end (or an abort).
    """
    validate(request)
    started = now_iso()
    version, infos = endpoint.preflight(request.models, min(PREFLIGHT_LIMIT, request.timeout))
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
                         tuple(models), tuple(session.runs), tuple(session.failures), started, now_iso())
    if recorder is not None:
        recorder.finished(report)
    return report


def _skipped(info: ModelInfo) -> ModelBench:
    return ModelBench(info.name, info.digest, "failed", info.context_length, None, None, None, (),
                      ("not measured: the server went away earlier in the benchmark",))

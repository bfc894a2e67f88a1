"""From measured samples to runs, and from runs to a series summary: the arithmetic of `bench`, no I/O.

Rates come from the server's counters when it sends them (Ollama's native API) and from client timestamps
otherwise; a series is summarised by median and spread of its successful runs (`domain.stats`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from localcodex.core.bench.targets import Sample
from localcodex.domain.bench import ModelInfo, RunResult, SeriesSummary
from localcodex.domain.stats import is_tight, spread

LONG_PROMPT = 256  # prefill of fewer tokens takes too little time to judge a spread by
RELOAD_SECONDS = 0.1  # a measured run with more load time than this found the model unloaded
TTFT_FLOOR_S = 0.005  # TTFT values this close agree, however small they are
SERIAL_CONCURRENCY = 1.3  # below this, a parallel batch was decoded one request after another


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


def now_iso() -> str:
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
    """`has_counters`: the endpoint always sends its counters (Ollama); a sample may also bring its own
    (`sample.source`, e.g. llama.cpp's timings), which are then preferred to client timing."""
    c = sample.counters
    err = sample.error
    ok = err is None
    source = sample.source or ("ollama" if has_counters else "client")
    counted = source != "client"
    # llama.cpp's prompt_n leaves out the tokens reused from its cache: the prompt's size is usage's count
    prompt_count = sample.prompt_count if source == "llama.cpp" else c.get("prompt_eval_count", sample.prompt_count)
    return RunResult(
        model=key.model, digest=key.digest, phase=key.phase, prompt_target=key.prompt_target,
        parallel=key.parallel, run=key.run, slot=slot, status="ok" if ok else "failed",
        error=err.message if err else None, error_code=err.code if err else None,
        started_at=datetime.fromtimestamp(sample.started_wall, timezone.utc).isoformat(timespec="milliseconds"),
        done_reason=sample.done_reason, load_duration=c.get("load_duration"),
        prompt_eval_count=prompt_count,
        prompt_eval_duration=c.get("prompt_eval_duration"),
        eval_count=c.get("eval_count", sample.completion_tokens), eval_duration=c.get("eval_duration"),
        total_duration=c.get("total_duration"), stream_tokens=sample.chunks,
        stream_span_s=sample.last_at - sample.first_at if sample.first_at is not None and sample.last_at else None,
        aggregate_tps=batch.tps if ok else None, batch_wall_s=batch.wall_s,
        source=source,
        **_rates(sample, counted),
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




# -- from runs to a series ---


def _batch_value(batch: Sequence[RunResult], name: str) -> float | None:
    values = [getattr(r, name) for r in batch if getattr(r, name) is not None]
    return statistics.median(values) if values else None


def settled(batches: Sequence[Sequence[RunResult]]) -> bool:
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
        source=_source(ok),
    )


def _source(ok: Sequence[RunResult]) -> str | None:
    sources = {r.source for r in ok}
    return sources.pop() if len(sources) == 1 else ("mixed" if sources else None)


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


def describe_series(s: SeriesSummary) -> str:
    head = f"{s.model} · {s.prompt_tokens or s.prompt_target} tok prompt · parallel {s.parallel}"
    if s.status != "ok" and not s.decode_tps:
        return f"{head}: failed: {s.error}"
    decode = ""
    if s.decode_tps:
        counted = f"{s.decode_tps.n} runs" if s.decode_tps.n == s.runs else f"{s.decode_tps.n} of {s.runs} runs"
        decode = f"decode {s.decode_tps.median:.1f} tok/s (median of {counted})"
    stop = ", stopped early: spread under 2 %" if s.early_stop else ""
    return f"{head}: {decode}{stop}" + (f"; failed: {s.error}" if s.status != "ok" else "")



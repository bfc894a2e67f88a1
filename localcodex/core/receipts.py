"""What `localcodex receipts list|show|compare|export` compute from the receipts store.

The store (`localcodex.adapters.receipts`) reads and writes; this module decides what a listing shows, which
measurement a comparison sets another against, and which columns an export has.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localcodex.domain.bench import RunResult
from localcodex.domain.csvtext import csv_text
from localcodex.errors import UsageError

if TYPE_CHECKING:
    from localcodex.adapters.receipts import ReceiptStore, SessionDetail, SessionRecord, SummaryRecord

RUN_CSV_COLUMNS: tuple[str, ...] = tuple(RunResult.__dataclass_fields__)
SESSION_CSV_COLUMNS = ("session_id", "session_kind", "session_status", "session_started_at", "machine",
                       "fingerprint", "endpoint", "api", "server_version")


@dataclass(frozen=True)
class ReceiptLine:
    id: int
    kind: str
    status: str  # "incomplete" for a session that never finished (still running, or killed)
    started_at: str
    machine: str
    endpoint: str | None
    models: tuple[str, ...]
    headline: str | None  # e.g. "qwen3:8b 41.2 tok/s" (decode median, shortest prompt, parallel 1)


@dataclass(frozen=True)
class ReceiptList:
    database: str
    receipts: tuple[ReceiptLine, ...]


def _status(session: SessionRecord) -> str:
    return "incomplete" if session.incomplete else session.status


def _headline(summaries: Sequence[SummaryRecord]) -> str | None:
    parts = []
    for model in dict.fromkeys(s.model for s in summaries):
        rows = [s for s in summaries if s.model == model and s.parallel == 1 and s.decode_median]
        if rows:
            best = min(rows, key=lambda s: s.prompt_tokens or s.prompt_target)
            parts.append(f"{model} {best.decode_median:.1f} tok/s")
    return ", ".join(parts) or None


def _attempts_line(store: ReceiptStore, session_id: int) -> str | None:
    """e.g. "4/6 attempts passed" for an eval or a trial."""
    runs = store.task_runs(session_id)
    if not runs:
        return None
    passed = sum(1 for r in runs if r.get("status") == "pass")
    return f"{passed}/{len(runs)} attempts passed"


def list_receipts(store: ReceiptStore, limit: int | None = 20) -> ReceiptList:
    lines = tuple(
        ReceiptLine(s.id, s.kind, _status(s), s.started_at, s.machine, s.endpoint, s.models,
                    _attempts_line(store, s.id) if s.kind in ("eval", "trial") else _headline(store.summaries(s.id)))
        for s in store.sessions(limit=limit)
    )
    return ReceiptList(str(store.path), lines)


def show_receipt(store: ReceiptStore, session_id: int) -> SessionDetail:
    return store.session(session_id)


@dataclass(frozen=True)
class ComparisonRow:
    session_id: int
    started_at: str
    machine: str
    endpoint: str | None
    model: str
    prompt_tokens: int | None
    prompt_target: int
    parallel: int
    decode_tps: float | None
    prompt_tps: float | None
    ttft_s: float | None
    aggregate_tps: float | None
    baseline_session: int | None  # what `decode_change` is measured against
    decode_change: float | None  # relative, e.g. +0.12 = 12 % faster than the baseline


@dataclass(frozen=True)
class Comparison:
    sessions: tuple[int, ...]
    rows: tuple[ComparisonRow, ...]


def _baseline(first: Sequence[SummaryRecord], s: SummaryRecord) -> SummaryRecord | None:
    """The first session's series for the same model, prompt size and parallel level; else the same prompt
    size and parallel level (comparing model A there with model B here)."""
    same = [b for b in first if b.prompt_target == s.prompt_target and b.parallel == s.parallel and b.decode_median]
    return next((b for b in same if b.model == s.model), same[0] if same else None)


def compare_any(store: ReceiptStore, ids: Sequence[int]) -> Any:
    """`receipts compare`: eval and trial receipts give the eval report (profiles per class of work), benchmarks
    the decode comparison."""
    from localcodex.core.eval.report import from_receipts

    if ids and all(store.session(i).session.kind in ("eval", "trial") for i in ids):
        return from_receipts(store, ids)
    return compare_receipts(store, ids)


def compare_receipts(store: ReceiptStore, ids: Sequence[int]) -> Comparison:
    if len(ids) < 2:
        raise UsageError("compare needs at least two receipt ids", "e.g. `localcodex receipts compare 3 7`")
    details = [store.session(i) for i in ids]  # NotFound for an unknown id
    first = details[0].summaries
    rows = []
    for detail in details:
        for s in detail.summaries:
            base = _baseline(first, s) if detail is not details[0] else None
            change = ((s.decode_median / base.decode_median - 1.0)
                      if base and base.decode_median and s.decode_median else None)
            rows.append(ComparisonRow(
                detail.session.id, detail.session.started_at, detail.session.machine, detail.session.endpoint,
                s.model, s.prompt_tokens, s.prompt_target, s.parallel, s.decode_median, s.prompt_median,
                s.ttft_median, s.aggregate_median, ids[0] if base else None, change))
    return Comparison(tuple(ids), tuple(rows))


@dataclass(frozen=True)
class RunExport:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def csv(self) -> str:
        return csv_text(self.columns, self.rows)


def export_receipts(store: ReceiptStore) -> RunExport:
    rows = tuple(
        (s.id, s.kind, _status(s), s.started_at, s.machine, s.fingerprint, s.endpoint, s.api, s.server_version,
         *(getattr(run, c) for c in RUN_CSV_COLUMNS))
        for s, run in store.all_runs()
    )
    return RunExport(SESSION_CSV_COLUMNS + RUN_CSV_COLUMNS, rows)


def runs_export(runs: Iterable[RunResult]) -> RunExport:
    """The per-run table of one benchmark (what `bench --csv` prints)."""
    return RunExport(RUN_CSV_COLUMNS, tuple(tuple(getattr(r, c) for c in RUN_CSV_COLUMNS) for r in runs))

"""The eval report: profiles side by side per class of work, and a plain sentence per class.

Per class and profile: attempts, pass rate, median wall time, median tokens (input + output), median cost
(when a price was given) and median output speed. A profile *passes* a class when at least half of its
attempts at that class's tasks pass (PASS_RATE). Per class the verdict names the cheapest profile that passes
(by cost when every passing profile has a price, else by tokens) and the fastest (by median wall time).
Exported as Markdown, CSV or JSON (the JSON is the report itself).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localcodex.core.eval.attempt import PASS, TaskRun, from_json
from localcodex.core.eval.tasks import CLASSES
from localcodex.errors import NotFound, UsageError

if TYPE_CHECKING:
    from localcodex.adapters.receipts import ReceiptStore

PASS_RATE = 0.5
FORMATS = ("md", "csv", "json")


@dataclass(frozen=True)
class ClassRow:
    task_class: str
    profile: str
    attempts: int
    passed: int
    pass_rate: float
    median_wall_s: float | None
    median_tokens: float | None
    median_cost: float | None
    median_output_tps: float | None

    @property
    def passes(self) -> bool:
        return self.attempts > 0 and self.pass_rate >= PASS_RATE


@dataclass(frozen=True)
class ClassVerdict:
    task_class: str
    cheapest: str | None  # None: no profile passes this class
    fastest: str | None
    by: str  # "cost" | "tokens"
    sentence: str


@dataclass(frozen=True)
class EvalReport:
    receipts: tuple[int, ...]
    profiles: tuple[str, ...]
    classes: tuple[str, ...]
    rows: tuple[ClassRow, ...]
    verdicts: tuple[ClassVerdict, ...]
    runs: tuple[TaskRun, ...]
    incomplete: bool  # a receipt was interrupted (or is still running)

    def row(self, task_class: str, profile: str) -> ClassRow | None:
        return next((r for r in self.rows if r.task_class == task_class and r.profile == profile), None)

    def verdict(self, task_class: str) -> ClassVerdict:
        return next(v for v in self.verdicts if v.task_class == task_class)


def build_report(runs: Sequence[TaskRun], receipts: Sequence[int] = (), incomplete: bool = False) -> EvalReport:
    profiles = tuple(dict.fromkeys(r.profile for r in runs))
    seen = list(dict.fromkeys(r.task_class for r in runs))
    classes = tuple(sorted(seen, key=lambda c: (CLASSES.index(c) if c in CLASSES else len(CLASSES), c)))
    rows = tuple(_row(c, p, [r for r in runs if r.task_class == c and r.profile == p])
                 for c in classes for p in profiles)
    verdicts = tuple(_verdict(c, [r for r in rows if r.task_class == c]) for c in classes)
    return EvalReport(tuple(receipts), profiles, classes, rows, verdicts, tuple(runs), incomplete)


def _median(values: Iterable[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _row(task_class: str, profile: str, runs: Sequence[TaskRun]) -> ClassRow:
    passed = sum(1 for r in runs if r.status == PASS)
    timed = [r for r in runs if r.status != "skipped"]
    return ClassRow(
        task_class, profile, len(runs), passed, passed / len(runs) if runs else 0.0,
        _median(r.wall_s for r in timed), _median(r.tokens for r in timed), _median(r.cost for r in timed),
        _median(r.output_tps for r in timed))


def _verdict(task_class: str, rows: Sequence[ClassRow]) -> ClassVerdict:
    passing = [r for r in rows if r.passes]
    if not passing:
        best = max(rows, key=lambda r: r.pass_rate, default=None)
        tail = f" (best: `{best.profile}`, {best.pass_rate:.0%} of {best.attempts})" if best and best.attempts else ""
        return ClassVerdict(task_class, None, None, "tokens", f"{task_class}: no profile passes it{tail}.")
    by = "cost" if all(r.median_cost is not None for r in passing) else "tokens"
    cheapest = min(passing, key=lambda r: (_inf(r.median_cost if by == "cost" else r.median_tokens), r.profile))
    fastest = min(passing, key=lambda r: (_inf(r.median_wall_s), r.profile))
    cost = _money(cheapest.median_cost) if by == "cost" else f"{_count(cheapest.median_tokens)} tokens"
    speed = f"{fastest.median_wall_s:.1f} s" if fastest.median_wall_s is not None else "time unknown"
    if len(passing) == 1:
        sentence = (f"{task_class}: only `{cheapest.profile}` passes it ({cheapest.pass_rate:.0%}, {cost} and "
                    f"{speed} per task).")
    elif cheapest.profile == fastest.profile:
        sentence = (f"{task_class}: `{cheapest.profile}` is both the cheapest ({cost} per task) and the fastest "
                    f"({speed}) profile that passes it.")
    else:
        sentence = (f"{task_class}: the cheapest profile that passes it is `{cheapest.profile}` ({cost} per task), "
                    f"the fastest is `{fastest.profile}` ({speed}).")
    return ClassVerdict(task_class, cheapest.profile, fastest.profile, by, sentence)


def _inf(value: float | None) -> float:
    return float("inf") if value is None else value


def _money(value: float | None) -> str:
    return "–" if value is None else f"${value:.4f}"


def _count(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


# ------------------------------------------------------------------------------------------------- receipts


def from_receipts(store: ReceiptStore, ids: Sequence[int] = ()) -> EvalReport:
    """The report of the given eval receipts (merged), or of the newest one."""
    if not ids:
        latest = store.sessions(kind="eval", limit=1)
        if not latest:
            raise NotFound(f"no eval receipt in {store.path}", "run `localcodex eval --profile NAME` first")
        ids = [latest[0].id]
    runs: list[TaskRun] = []
    incomplete = False
    for session_id in ids:
        detail = store.session(session_id)  # NotFound for an unknown id
        if detail.session.kind not in ("eval", "trial"):
            raise UsageError(f"receipt {session_id} is a {detail.session.kind}, not an eval",
                             "see `localcodex receipts list` for eval receipts")
        incomplete = incomplete or detail.session.status in ("running", "interrupted")
        runs += [from_json(data) for data in store.task_runs(session_id)]
    return build_report(runs, ids, incomplete)


# ------------------------------------------------------------------------------------------------- export

CSV_COLUMNS = ("class", "profile", "attempts", "passed", "pass_rate", "median_wall_s", "median_tokens",
               "median_cost", "median_output_tps", "cheapest", "fastest")


def csv_rows(report: EvalReport) -> list[tuple[Any, ...]]:
    rows = []
    for r in report.rows:
        verdict = report.verdict(r.task_class)
        rows.append((r.task_class, r.profile, r.attempts, r.passed, round(r.pass_rate, 4), r.median_wall_s,
                     r.median_tokens, r.median_cost, r.median_output_tps, verdict.cheapest == r.profile,
                     verdict.fastest == r.profile))
    return rows


def to_csv(report: EvalReport) -> str:
    from localcodex.domain.csvtext import csv_text

    return csv_text(CSV_COLUMNS, csv_rows(report))


def to_markdown(report: EvalReport) -> str:
    source = ", ".join(map(str, report.receipts)) or "this run"
    lines = [f"# localcodex eval (receipt {source})", ""]
    if report.incomplete:
        lines += ["The run was interrupted: only the attempts that finished are counted.", ""]
    lines += ["## Verdict", ""] + [f"- {v.sentence}" for v in report.verdicts] + [""]
    lines += ["## Per class", "", "| class | profile | pass rate | median time | median tokens | median cost | "
              "output tok/s |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in report.rows:
        wall = "–" if r.median_wall_s is None else f"{r.median_wall_s:.1f} s"
        tps = "–" if r.median_output_tps is None else f"{r.median_output_tps:.1f}"
        lines.append(f"| {r.task_class} | {r.profile} | {r.passed}/{r.attempts} ({r.pass_rate:.0%}) | {wall} | "
                     f"{_count(r.median_tokens)} | {_money(r.median_cost)} | {tps} |")
    lines += ["", "## Attempts", "", "| task | class | profile | # | status | time | tokens | tool calls | why |",
              "|---|---|---|---:|---|---:|---:|---:|---|"]
    for run in report.runs:
        why = (run.reason or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {run.name} | {run.task_class} | {run.profile} | {run.repeat} | {run.status} | "
                     f"{run.wall_s:.1f} s | {_count(run.tokens)} | {run.tool_calls} | {why} |")
    return "\n".join(lines) + "\n"

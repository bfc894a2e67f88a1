"""How a benchmark report looks to people: rich tables and a bar chart (imported only when rendering)."""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from localcodex.domain.bench import SOURCES, BenchReport, SeriesSummary
from localcodex.domain.stats import Spread

BAR_WIDTH = 40


def rate(value: float | None) -> str:
    """Three significant digits (tok/s are never known better than that).

    >>> rate(1234.5), rate(141.6), rate(41.26), rate(3.214), rate(None)
    ('1234', '142', '41.3', '3.21', '–')
    """
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def seconds(value: float | None) -> str:
    """
    >>> seconds(0.0423), seconds(2.5), seconds(None)
    ('42 ms', '2.50 s', '–')
    """
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def with_spread(s: Spread | None) -> str:
    """Median, then p10–p90 (min–max below 5 runs).

    >>> with_spread(Spread(5, 41.26, 40.0, 43.0, 40.5, 42.9)), with_spread(Spread(1, 9.5, 9.5, 9.5))
    ('41.3 [40.5–42.9]', '9.50')
    >>> with_spread(Spread(3, 300.0, 299.6, 300.2))
    '300 [300–300]'
    """
    if s is None:
        return "–"
    if s.n == 1:
        return rate(s.median)
    return f"{rate(s.median)} [{rate(s.low)}–{rate(s.high)}]"


def header(report: BenchReport) -> Text:
    server = f"Ollama {report.server_version}" if report.api == "ollama" else "OpenAI-compatible endpoint"
    line = f"{server} at {report.endpoint}"
    if report.machine:
        line += f"\nmachine: {report.machine}" + ("" if report.endpoint_local else " (the server is elsewhere)")
    if report.receipt_id:
        line += f"\nreceipt: {report.receipt_id} (`localcodex receipts show {report.receipt_id}`)"
    return Text(line)


def warmup_table(report: BenchReport) -> Table:
    table = Table(title="warm-up (cold start, not counted)", title_justify="left", box=None, pad_edge=False)
    for column in ("model", "load", "TTFT", "prompt tokens", "status"):
        table.add_column(column, justify="left" if column in ("model", "status") else "right")
    for model in report.models:
        w = model.warmup
        if w is None:
            continue
        load = w.load_duration / 1e9 if w.load_duration else None
        table.add_row(escape(model.model), seconds(load), seconds(w.ttft_s), str(w.prompt_eval_count or "–"),
                      "ok" if w.ok else f"failed: {escape(w.error or '')}")
    return table


def _cold_load(report: BenchReport, model: str) -> float | None:
    for m in report.models:
        if m.model == model and m.warmup and m.warmup.load_duration:
            return m.warmup.load_duration / 1e9
    return None


def summary_table(report: BenchReport, *, width: int = 120) -> Table:
    """One row per series. Below 100 columns the cold load (also in the warm-up table) is left out."""
    series = report.series
    parallel = any(s.parallel > 1 for s in series)
    ceiling = any(s.pct_of_ceiling is not None for s in series)
    show_load = width >= 100
    limit = report.settings.get("runs") or report.settings.get("max_runs") or 0
    few = any(s.decode_tps and s.decode_tps.p10 is None and s.decode_tps.n > 1 for s in series)
    title = "measured (medians; decode with [p10–p90]" + (", or [min–max] below 5 runs)" if few else ")")
    table = Table(title=escape(title), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    columns = ["model", "prompt\ntokens", *(["at\nonce"] if parallel else []), "prompt\ntok/s", "decode\ntok/s",
               *(["total\ntok/s"] if parallel else []), "TTFT", *(["cold\nload"] if show_load else []),
               *(["% of\nceiling"] if ceiling else []), "runs"]
    for column in columns:
        table.add_column(escape(column), justify="left" if column == "model" else "right",
                         no_wrap=column != "model", overflow="fold", min_width=12 if column == "model" else None)
    seen: set[str] = set()
    for s in series:
        load = _cold_load(report, s.model) if s.model not in seen else None
        seen.add(s.model)
        table.add_row(*_row(s, load if show_load else False, parallel, ceiling, limit))
    return table


def _row(s: SeriesSummary, load: float | bool | None, parallel: bool, ceiling: bool, limit: int) -> list[str]:
    """`load` False leaves the column out; None leaves the cell empty. Runs read "3/5": 3 of at most 5 (the
    series stopped early once they agreed); "✗" when one failed."""
    runs = f"{s.runs}/{limit}" + (" ✗" if s.runs_failed else "")
    row = [escape(s.model), str(s.prompt_tokens or s.prompt_target)]
    row += [str(s.parallel)] if parallel else []
    row += [rate(s.prompt_tps.median if s.prompt_tps else None), escape(with_spread(s.decode_tps))]
    row += [rate(s.aggregate_tps.median if s.aggregate_tps else None)] if parallel else []
    row += [seconds(s.ttft_s.median if s.ttft_s else None)]
    row += [] if load is False else [seconds(float(load)) if load else ""]
    row += [f"{s.pct_of_ceiling:.0f} %" if s.pct_of_ceiling is not None else "–"] if ceiling else []
    row += [runs if s.status == "ok" else f"[red]{runs}[/red]"]
    return row


def bar_chart(report: BenchReport) -> Table | None:
    """Decode tok/s (median) per model and prompt size, at parallel 1: the comparison people look for."""
    rows = [s for s in report.series if s.parallel == 1 and s.decode_tps]
    if not rows:
        return None
    top = max(s.decode_tps.median for s in rows if s.decode_tps)
    chart = Table(title="decode tok/s (median)", title_justify="left", box=None, show_header=False, pad_edge=False)
    chart.add_column(justify="left")
    chart.add_column(justify="left")
    chart.add_column(justify="right")
    for s in rows:
        assert s.decode_tps is not None
        width = max(1, round(BAR_WIDTH * s.decode_tps.median / top)) if top else 1
        label = f"{escape(s.model)} · {s.prompt_tokens or s.prompt_target} tok"
        chart.add_row(label, Text("█" * width, style="cyan"), rate(s.decode_tps.median))
    return chart


def notes(report: BenchReport) -> list[str]:
    """Each note once: one that every series of a model shares is said once for the model."""
    lines = []
    for model in report.models:
        lines += [f"{model.model}: {n}" for n in model.notes]
        shared = [n for n in dict.fromkeys(n for s in model.series for n in s.notes)
                  if len(model.series) > 1 and all(n in s.notes for s in model.series) and n not in model.notes]
        lines += [f"{model.model}: {n}" for n in shared]
        for s in model.series:
            where = f"{s.model} at {s.prompt_tokens or s.prompt_target} tokens"
            where += f", {s.parallel} at once" if s.parallel > 1 else ""
            lines += [f"{where}: {n}" for n in dict.fromkeys(s.notes) if n not in shared and n not in model.notes]
    lines += source_notes(report)
    return lines


def source_notes(report: BenchReport) -> list[str]:
    """Whose figures the prompt and decode rates are: the server's own counters or the client's clock."""
    by_source: dict[str, list[str]] = {}
    for s in report.series:
        if s.source:
            by_source.setdefault(s.source, []).append(f"{s.model} at {s.prompt_tokens or s.prompt_target} tokens")
    if len(by_source) == 1:
        source = next(iter(by_source))
        return [f"prompt and decode tok/s from {SOURCES.get(source, source)}"]
    return [f"prompt and decode tok/s of {', '.join(where)} from {SOURCES.get(source, source)}"
            for source, where in by_source.items()]

"""`localcodex receipts list|show|compare|export`: past benchmarks and trials, kept in a SQLite file on this
machine and never sent anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from localcodex.commands import options

receipts_app = typer.Typer(
    help="Past benchmarks, trials and evals, kept on this machine (never sent anywhere).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(receipts_app, name="receipts")


@receipts_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many, newest first.")] = 20,
    json_: options.Json = False,
) -> None:
    """List receipts, newest first."""
    from localcodex.render.output import run_command

    def body(out: Any) -> Any:
        from localcodex.adapters.receipts import ReceiptStore
        from localcodex.core.receipts import list_receipts

        with ReceiptStore() as store:
            return list_receipts(store, limit)

    run_command("receipts list", json_, body, _render_list)


@receipts_app.command("show")
def show_command(
    receipt_id: Annotated[int, typer.Argument(metavar="ID", help="A receipt id from `receipts list`.")],
    json_: options.Json = False,
) -> None:
    """Show one receipt: settings, machine, every series and every run."""
    from localcodex.render.output import run_command

    def body(out: Any) -> Any:
        from localcodex.adapters.receipts import ReceiptStore
        from localcodex.core.receipts import show_receipt

        with ReceiptStore() as store:
            return show_receipt(store, receipt_id)

    run_command("receipts show", json_, body, _render_show)


@receipts_app.command("compare")
def compare_command(
    receipt_ids: Annotated[list[int], typer.Argument(metavar="ID", help="Two or more receipt ids.")],
    json_: options.Json = False,
) -> None:
    """Compare receipts side by side; changes are relative to the first one. Eval receipts: profiles per class."""
    from localcodex.render.output import run_command

    def body(out: Any) -> Any:
        from localcodex.adapters.receipts import ReceiptStore
        from localcodex.core.receipts import compare_any

        with ReceiptStore() as store:
            return compare_any(store, receipt_ids)

    run_command("receipts compare", json_, body, _render_compare)


@receipts_app.command("export")
def export_command(
    csv_: Annotated[bool, typer.Option("--csv", help="Export every run as CSV (the only format, the default).")]
    = True,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.",
                                                  show_default=False)] = None,
    json_: options.Json = False,
) -> None:
    """Export every run of every receipt (raw counters included) as CSV."""
    from localcodex.render.output import run_command

    def body(out: Any) -> Any:
        from localcodex.adapters.files import write_text_atomic
        from localcodex.adapters.receipts import ReceiptStore
        from localcodex.core.receipts import export_receipts

        with ReceiptStore() as store:
            export = export_receipts(store)
        if out_file is not None:
            write_text_atomic(out_file, export.csv(), hint="choose another --out path")
            return {"path": str(out_file), "runs": len(export.rows)}
        if json_:
            return {"runs": [dict(zip(export.columns, row, strict=True)) for row in export.rows]}
        return export

    def render(out: Any, result: Any) -> None:
        import sys

        if isinstance(result, dict):
            out.note(f"wrote {result['runs']} run(s) to {result['path']}")
        else:
            sys.stdout.write(result.csv())

    run_command("receipts export", json_, body, render)


def _render_list(out: Any, listing: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not listing.receipts:
        out.note(f"no receipts yet in {listing.database}: run `localcodex bench MODEL` to make one")
        return
    table = Table(title=f"receipts ({listing.database})", title_justify="left")
    for column in ("id", "when (UTC)", "kind", "status", "models", "result", "endpoint"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for r in listing.receipts:
        status = r.status if r.status == "ok" else f"[red]{r.status}[/red]"
        table.add_row(str(r.id), r.started_at.replace("T", " ").removesuffix("+00:00"), r.kind, status,
                      escape(", ".join(r.models)), escape(r.headline or "–"), escape(r.endpoint or "–"))
    out.out.print(table)


def _render_show(out: Any, detail: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from localcodex.render.bench import rate, seconds

    s = detail.session
    status = "incomplete (interrupted or still running)" if s.incomplete else s.status
    lines = [f"receipt {s.id}: {s.kind}, {status}, started {s.started_at}",
             f"machine: {s.machine} (fingerprint {s.fingerprint})",
             f"endpoint: {s.endpoint or '–'} ({s.api or '–'}"
             + (f", version {s.server_version})" if s.server_version else ")"),
             f"settings: {', '.join(f'{k}={v}' for k, v in s.settings.items() if v is not None)}"]
    if s.error:
        lines.append(f"error: {s.error}")
    for line in lines:
        out.out.print(escape(line))
    if detail.summaries:
        table = Table(title=escape("series (median [p10–p90], [min–max] below 5 runs)"), title_justify="left")
        for column in ("model", "prompt tok", "parallel", "prompt tok/s", "decode tok/s", "TTFT", "runs", "status"):
            table.add_column(column, justify="left" if column in ("model", "status") else "right")
        for m in detail.summaries:
            decode = escape(f"{rate(m.decode_median)} [{rate(m.decode_low)}–{rate(m.decode_high)}]") \
                if m.decode_median else "–"
            table.add_row(escape(m.model), str(m.prompt_tokens or m.prompt_target), str(m.parallel),
                          rate(m.prompt_median), decode, seconds(m.ttft_median),
                          f"{m.runs_ok}" + (f" +{m.runs_failed} failed" if m.runs_failed else ""), m.status)
        out.out.print(table)
    if detail.runs:
        out.out.print(_runs_table(detail.runs))
    if s.kind != "bench" and s.details:
        import json

        out.out.print(escape(json.dumps(s.details, indent=2, sort_keys=True)))


def _runs_table(runs: Any) -> Any:
    from rich.markup import escape
    from rich.table import Table

    from localcodex.render.bench import rate, seconds

    table = Table(title="runs", title_justify="left")
    for column in ("model", "phase", "prompt", "par", "run", "prompt tok/s", "decode tok/s", "TTFT", "load",
                   "tokens", "status"):
        table.add_column(column, justify="left" if column in ("model", "phase", "status") else "right",
                         no_wrap=column in ("model", "phase"))
    for r in runs:
        load = seconds(r.load_duration / 1e9) if r.load_duration else "–"
        status = r.status if r.ok else f"[red]failed: {escape(r.error or '')}[/red]"
        table.add_row(escape(r.model), r.phase, str(r.prompt_eval_count or "–"), str(r.parallel),
                      str(r.run or "–"), rate(r.prompt_tps), rate(r.decode_tps), seconds(r.ttft_s), load,
                      str(r.eval_count or r.stream_tokens), status)
    return table


def _render_compare(out: Any, comparison: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from localcodex.render.bench import rate, seconds

    if not hasattr(comparison, "sessions"):  # eval or trial receipts: the eval report
        import sys

        from localcodex.core.eval.report import to_markdown

        sys.stdout.write(to_markdown(comparison))
        return

    table = Table(title=f"comparison (changes relative to receipt {comparison.sessions[0]})", title_justify="left")
    for column in ("receipt", "model", "prompt tok", "parallel", "decode tok/s", "change", "prompt tok/s", "TTFT",
                   "machine"):
        table.add_column(column, justify="left" if column in ("model", "machine") else "right")
    for row in comparison.rows:
        change = f"{row.decode_change:+.1%}" if row.decode_change is not None else ""
        table.add_row(str(row.session_id), escape(row.model), str(row.prompt_tokens or row.prompt_target),
                      str(row.parallel), rate(row.decode_tps), change, rate(row.prompt_tps), seconds(row.ttft_s),
                      escape(row.machine))
    out.out.print(table)

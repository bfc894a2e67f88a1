"""`localcodex eval`: run a task set with the real Codex on one or more profiles; `eval report` compares them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.core.eval.report import EvalReport
    from localcodex.core.eval.runner import EvalEvent, EvalRun
    from localcodex.render.output import Outcome, Output

eval_app = typer.Typer(
    help="Run the same coding tasks with the real Codex on each profile, grade the outcomes, keep the "
    "receipts; `eval report` compares the profiles per class of work.",
    invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


@eval_app.callback()
def eval_command(
    ctx: typer.Context,
    profile: Annotated[list[str] | None, typer.Option(
        "--profile", "-p", metavar="NAME", help="A Codex profile to evaluate (repeat for several; "
        "default local_ollama).")] = None,
    repeat: Annotated[int, typer.Option("--repeat", metavar="N", help="Attempts per task and profile.")] = 1,
    tasks_dir: Annotated[Path | None, typer.Option(
        "--tasks", metavar="DIR", help="Your own task folders instead of the built-in set (see README).")] = None,
    task: Annotated[list[str] | None, typer.Option(
        "--task", metavar="NAME", help="Run only this task or class of tasks (repeatable).")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="S", help="Seconds each attempt may take before Codex is stopped.")] = 300.0,
    price: Annotated[list[str] | None, typer.Option(
        "--price", metavar="PROFILE=IN/OUT", help="Dollars per million input/output tokens, for a cost per "
        "task (repeatable).")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep every scratch repository (failed ones are always "
                                       "kept).")] = False,
    workdir: Annotated[Path | None, typer.Option(
        "--workdir", metavar="DIR", help="A new or empty folder for the scratch repositories.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the tasks and exit.")] = False,
    json_: options.Json = False,
) -> None:
    """Run each task with `codex exec -p PROFILE` in a scratch git repository, grade the outcome, and report
    per class of work which profile passes, and which is cheapest and fastest. Saved in the receipts."""
    if ctx.invoked_subcommand is not None:
        return
    from localcodex.render.output import run_command

    def load() -> Any:
        from localcodex.core.eval import tasks as eval_tasks

        found = eval_tasks.load_folder_tasks(tasks_dir) if tasks_dir else eval_tasks.builtin_tasks()
        return eval_tasks.select(found, task or [])

    if list_:
        run_command("eval", json_, lambda out: {"tasks": [{"name": t.name, "class": t.task_class,
                                                           "instruction": t.instruction} for t in load()]},
                    _render_list)

    def body(out: Output) -> EvalRun:
        from localcodex.core.eval.runner import EvalRequest, parse_price, run_eval

        request = EvalRequest(
            profiles=tuple(profile or ["local_ollama"]), tasks=load(), repeat=repeat, timeout_s=timeout,
            prices=tuple(parse_price(p) for p in price or []), workdir=workdir, keep=keep)
        from localcodex.wiring import live

        return run_eval(request, live(), on_progress=lambda event: _progress(out, event))

    run_command("eval", json_, body, render, judge)


@eval_app.command("report")
def report_command(
    receipt_ids: Annotated[list[int] | None, typer.Argument(
        metavar="ID", help="Eval receipts to report on, merged (default: the newest).")] = None,
    format_: Annotated[str, typer.Option("--format", metavar="md|csv|json",
                                         help="Print the report as Markdown, CSV or JSON.")] = "md",
    out_file: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="Write the report to this file.",
                                                  show_default=False)] = None,
    json_: options.Json = False,
) -> None:
    """Profiles side by side per class of work: pass rate, median time, tokens, cost, and which profile is the
    cheapest and the fastest that passes each class."""
    from localcodex.render.output import run_command

    def body(out: Output) -> Any:
        from localcodex.adapters.files import write_text_atomic
        from localcodex.adapters.receipts import ReceiptStore
        from localcodex.core.eval.report import FORMATS, from_receipts
        from localcodex.errors import UsageError

        if format_ not in FORMATS:
            raise UsageError(f"--format {format_}: choose md, csv or json", "e.g. --format csv")
        with ReceiptStore() as store:
            report = from_receipts(store, receipt_ids or [])
        if out_file is not None:
            write_text_atomic(out_file, export_text(report, format_), hint="choose another --out path")
            return {"path": str(out_file), "format": format_, "report": report}
        return report

    def show(out: Output, result: Any) -> None:
        import sys

        if isinstance(result, dict):
            out.note(f"wrote the report ({result['format']}) to {result['path']}")
        else:
            sys.stdout.write(export_text(result, format_))

    run_command("eval report", json_, body, show)


def export_text(report: EvalReport, format_: str) -> str:
    import json

    from localcodex.core.eval import report as eval_report
    from localcodex.render.output import to_jsonable

    if format_ == "csv":
        return eval_report.to_csv(report)
    if format_ == "json":
        return json.dumps(to_jsonable(report), indent=2) + "\n"
    return eval_report.to_markdown(report)


def _progress(out: Output, event: EvalEvent) -> None:
    from localcodex.render.progress import human_duration

    if out.json:
        fields: dict[str, Any] = {"message": event.message, "index": event.index, "total": event.total,
                                  "elapsed_s": round(event.elapsed_s, 3)}
        if event.remaining_s is not None:
            fields["remaining_s"] = round(event.remaining_s, 3)
        if event.run is not None:
            fields.update(task=event.run.name, profile=event.run.profile, repeat=event.run.repeat,
                          status=event.run.status, wall_s=event.run.wall_s)
        out.event(f"eval.{event.kind}", **fields)
        return
    if event.kind == "attempt_done" and event.run is not None:
        run = event.run
        why = f" ({_escape(run.reason)})" if run.reason else ""
        left = f", about {human_duration(event.remaining_s)} left" if event.index < event.total else ""
        out.note(f"[{event.index}/{event.total}] {_escape(event.message)}{why} in {run.wall_s:.1f} s  "
                 f"[dim]elapsed {human_duration(event.elapsed_s)}{left}[/dim]")
    elif event.kind == "receipt" and "not saved" in event.message:
        out.warn(event.message)
    elif event.kind != "attempt_started":
        out.note(f"[dim]{_escape(event.message)}[/dim]")


def judge(run: EvalRun) -> Outcome:
    """Exit 0 when the eval ran to its end (failed tasks are results, not errors); 130 when interrupted."""
    from localcodex.errors import ExitCode
    from localcodex.render.output import ErrorItem, Outcome

    if run.interrupted:
        return Outcome(ExitCode.INTERRUPTED, (ErrorItem(
            "interrupted", f"interrupted after {len(run.runs)} of {run.planned} attempts",
            "the finished attempts are kept: `localcodex eval report`"),))
    return Outcome()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _render_list(out: Output, listing: Any) -> None:
    for item in listing["tasks"]:
        out.out.print(f"[bold]{_escape(item['name'])}[/bold] ({item['class']}): {_escape(item['instruction'])}")


def render(out: Output, run: EvalRun) -> None:
    from rich.table import Table

    from localcodex.core.eval.report import build_report

    report = build_report(run.runs, (run.receipt_id,) if run.receipt_id else (), run.interrupted)
    table = Table(title="per class of work", title_justify="left")
    for column in ("class", "profile", "pass rate", "median time", "median tokens", "median cost"):
        table.add_column(column, justify="left" if column in ("class", "profile") else "right")
    for r in report.rows:
        rate = f"{r.passed}/{r.attempts} ({r.pass_rate:.0%})"
        table.add_row(r.task_class, _escape(r.profile), rate if r.passes else f"[red]{rate}[/red]",
                      "–" if r.median_wall_s is None else f"{r.median_wall_s:.1f} s",
                      "–" if r.median_tokens is None else f"{r.median_tokens:,.0f}",
                      "–" if r.median_cost is None else f"${r.median_cost:.4f}")
    out.out.print(table)
    for verdict in report.verdicts:
        out.out.print(_escape(verdict.sentence))
    if run.interrupted:
        out.out.print(f"[yellow]interrupted[/yellow] after {len(run.runs)} of {run.planned} attempts; "
                      "the finished ones are kept")
    kept = [r for r in run.runs if r.workdir]
    if kept:
        out.out.print(f"scratch repositories kept for inspection in {_escape(run.workdir)}")
    if run.receipt_id is not None:
        out.out.print(f"[dim]saved as receipt {run.receipt_id} (`localcodex eval report {run.receipt_id}`)[/dim]")

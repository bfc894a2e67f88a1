"""`localcodex bench MODEL…`: prompt and decode tokens/s, time to first token and load time, measured the
same way every time, kept as receipts. Works against Ollama (`--host`) or any OpenAI-compatible endpoint
(`--base-url`, with `--env-key` naming the variable that holds its API key)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.core.bench.run import BenchRequest
    from localcodex.domain.bench import BenchEvent, BenchReport
    from localcodex.render.output import Outcome, Output


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)


def bench_command(
    models: Annotated[list[str], typer.Argument(metavar="MODEL", show_default=False,
                                                help="Model names, e.g. qwen3-coder:30b (several to compare).")],
    runs: Annotated[int | None, typer.Option(
        "--runs", help="Exactly N measured runs per series. Default: up to 5, stopping after 3 once they agree "
        "within 2 %.", show_default=False)] = None,
    prompt_tokens: Annotated[str, typer.Option(
        "--prompt-tokens", help="Prompt sizes in tokens, comma-separated (8k = 8192; 0 or short = the short "
        "prompt); capped at the model's context.")] = "short,8k",
    num_predict: Annotated[int, typer.Option("--num-predict", help="Tokens to generate per run.")] = 128,
    parallel: Annotated[str, typer.Option(
        "--parallel", help="Concurrent requests, comma-separated, e.g. 1,2,4 (per-request and total tok/s).")] = "1",
    host: options.Host = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="Benchmark an OpenAI-compatible endpoint instead of Ollama (…/v1).",
        show_default=False)] = None,
    env_key: Annotated[str | None, typer.Option(
        "--env-key", help="Name of the environment variable holding the endpoint's API key.",
        show_default=False)] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", help="Seconds without an answer (beyond the expected prompt processing) before a run "
        "fails; also the warm-up's total limit (default 120, warm-up 720 for loading big models).",
        show_default=False)] = None,
    json_: options.Json = False,
    csv_: Annotated[bool, typer.Option("--csv", help="Print the per-run table as CSV on stdout.")] = False,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not keep receipts of this benchmark.")] = False,
) -> None:
    """Measure prompt and decode tokens/s, time to first token and load time; keep the receipts."""
    from localcodex.render.output import run_command

    def body(out: Output) -> BenchReport:
        from localcodex.core.bench.run import BenchRequest

        if json_ and csv_:
            from localcodex.errors import UsageError

            raise UsageError("--json and --csv cannot be combined", "pick one output format")
        request = BenchRequest(
            models=tuple(dict.fromkeys(models)), prompt_tokens=tuple(parse_counts(prompt_tokens, "--prompt-tokens")),
            num_predict=num_predict, runs=runs, parallel=tuple(parse_counts(parallel, "--parallel")), host=host,
            base_url=base_url, env_key=env_key, timeout=120.0 if timeout is None else timeout,
            warmup_timeout=timeout)
        return run_bench(out, request, save=not no_save)

    run_command("bench", json_, body, render_csv if csv_ else render, judge)


def parse_counts(text: str, option: str) -> list[int]:
    """`short,8k,32768` → [0, 8192, 32768].

    >>> parse_counts("short, 8k,32768", "--prompt-tokens")
    [0, 8192, 32768]
    >>> parse_counts("1,2,x", "--parallel")
    Traceback (most recent call last):
    ...
    localcodex.errors.UsageError: --parallel: 'x' is not a whole number
    """
    from localcodex.errors import UsageError

    values = []
    for part in (p.strip().lower() for p in text.split(",")):
        if part in ("short", "s"):
            values.append(0)
            continue
        scale = 1024 if part.endswith("k") else 1
        try:
            values.append(int(part.removesuffix("k")) * scale)
        except ValueError:
            raise UsageError(f"{option}: {part!r} is not a whole number", f"e.g. {option} 1,2,4") from None
    return values


def run_bench(out: Output, request: BenchRequest, *, save: bool) -> BenchReport:
    from localcodex.core.bench.command import run_benchmark
    from localcodex.wiring import live

    progress = Progress(out)
    try:
        report = run_benchmark(request, live(request.host, json=out.json), progress, save=save)
    finally:
        progress.close()
    for warning in report.warnings:
        out.warn(warning)
    return report


class Progress:
    """Benchmark events as a live status line (terminal), plain lines (stderr not a terminal) or JSON events."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.status: Any = None

    def __call__(self, event: BenchEvent) -> None:
        if self.out.json:
            self.out.event(event.kind, message=event.message, model=event.model, run=event.run,
                           summary=event.summary)
            return
        if not self.out.err.is_terminal:
            self.out.note(_escape(event.message))
            return
        if self.status is None:
            self.status = self.out.err.status(_escape(event.message))
            self.status.start()
        else:
            self.status.update(_escape(event.message))
        if event.kind in ("failed", "series"):
            self.out.err.print(_escape(event.message))

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def judge(report: BenchReport) -> Outcome:
    from localcodex.errors import ExitCode
    from localcodex.render.output import ErrorItem, Outcome

    if report.status == "ok":
        return Outcome()
    items = tuple(
        ErrorItem(f.code, f"{f.model} ({f.phase}"
                  + (f", {f.prompt_target}-token prompt, parallel {f.parallel}, run {f.run}" if f.run else "")
                  + f"): {f.message}", "retry; if it fails again, see `localcodex doctor`")
        for f in report.failures
    ) or (ErrorItem("bench_failed", "the benchmark did not complete", None),)
    timed_out = bool(report.failures) and all(f.code == "timeout" for f in report.failures)
    return Outcome(ExitCode.TIMEOUT if timed_out else ExitCode.SERVER_ERROR, items)


def render_csv(out: Output, report: BenchReport) -> None:
    import sys

    from localcodex.core.receipts import runs_export

    sys.stdout.write(runs_export(report.runs).csv())
    sys.stdout.flush()
    _render_failures(out, report)


def render(out: Output, report: BenchReport) -> None:
    from localcodex.render.bench import bar_chart, header, notes, summary_table, warmup_table

    console = out.out
    console.print(header(report))
    if any(m.warmup for m in report.models):
        console.print(warmup_table(report))
    if report.series:
        console.print(summary_table(report, width=console.width))
        chart = bar_chart(report)
        if chart is not None:
            console.print(chart)
    for line in notes(report):
        out.err.print(f"[dim]note:[/dim] {_escape(line)}")
    _render_failures(out, report)


def _render_failures(out: Output, report: BenchReport) -> None:
    if report.status == "ok":
        return
    out.err.print(f"[bold red]benchmark failed:[/bold red] {len(report.failures)} run(s) failed; "
                  "what was measured is kept" + (f" in receipt {report.receipt_id}" if report.receipt_id else ""))
    for failure in report.failures:
        out.err.print(f"  [red]✗[/red] {_escape(failure.model)} ({failure.phase}): {_escape(failure.message)}")

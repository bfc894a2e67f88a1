"""Progress displays for long transfers (pull, import, export): what `on_progress` callbacks turn into.

Three forms, chosen by `pull_display(out)`:
- a rich live display on stderr (one bar per layer with size, speed and ETA, plus the phases) when a person
  is watching a terminal;
- plain lines, throttled (a line per 10 % of each layer, or every few seconds when it is slow), for logs and
  CI, where one line per 60 ms event would bury everything;
- JSON lines on stderr (`out.event`) in `--json` mode, also throttled per layer.

Rendering costs: rich redraws on its own timer (`refresh_per_second`), so the callback only updates numbers;
the per-event work is a dict look-up and a float comparison.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localcodex.domain.progress import PullEvent, PullPlan, TransferEvent
from localcodex.render.output import Output, human_bytes

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, Task

PHASE_TEXT = {
    "manifest": "pulling manifest",
    "verify": "verifying sha256 digest",
    "write": "writing manifest",
    "cleanup": "removing unused layers",
    "success": "done",
}


def plan_line(plan: PullPlan) -> str:
    size = human_bytes(plan.download_bytes, decimal=True) if plan.download_bytes else "size unknown"
    source = f" ({plan.size_source})" if plan.download_bytes else ""
    return f"pulling {plan.model}: {size}{source}; {plan.disk.reason}"


def short_digest(digest: str | None) -> str:
    return (digest or "").removeprefix("sha256:")[:12] or "model"


def human_duration(seconds: float | None) -> str:
    """
    >>> human_duration(75), human_duration(3725), human_duration(4.2), human_duration(None)
    ('1m15s', '1h02m', '4s', '?')
    """
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


# -- plain lines ---------------------------------------------------------------------------------------------


@dataclass
class _LayerTrack:
    index: int
    total: int | None = None
    completed: int = 0
    decile: int = -1
    last_line: float = 0.0
    start: float = 0.0
    start_bytes: int = 0
    done: bool = False


@dataclass
class PlainPullProgress:
    """Line-by-line progress: a line per layer at every 10 % step, or every `interval` s if slower."""

    write: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    interval: float = 10.0
    layers: dict[str, _LayerTrack] = field(default_factory=dict)
    last_phase: str | None = None

    def __call__(self, event: PullPlan | PullEvent) -> None:
        if isinstance(event, PullPlan):
            self.write(plan_line(event))
            return
        if event.phase == "layer":
            self._layer(event)
        elif event.phase != self.last_phase:
            self._finish_layers()
            if event.phase != "success":  # the command's summary says it
                self.write(PHASE_TEXT.get(event.phase, event.status))
        self.last_phase = event.phase

    def _finish_layers(self) -> None:
        """Ollama's last tick for a layer can show less than 100 %: the next phase means it is complete."""
        now = self.clock()
        for key, track in self.layers.items():
            if not track.done and track.total:
                track.completed, track.done = track.total, True
                self.write(self._line(key, track, now, final=True))

    def _layer(self, event: PullEvent) -> None:
        key = event.digest or event.status
        now = self.clock()
        track = self.layers.get(key)
        if track is None:
            track = self.layers[key] = _LayerTrack(len(self.layers) + 1, start=now, start_bytes=event.completed or 0)
            if event.total and event.completed == event.total:
                track.done = True
                self.write(f"  {short_digest(key)}  {human_bytes(event.total, decimal=True)}  already on disk")
                return
        if track.done:
            return
        track.total = event.total or track.total
        track.completed = event.completed or 0
        if not track.total:
            return
        decile = min(10, track.completed * 10 // track.total)
        if track.last_line == 0.0:
            track.last_line = now
        if (decile > max(track.decile, 0)) or now - track.last_line >= self.interval:
            track.decile, track.last_line = decile, now
            track.done = decile >= 10
            self.write(self._line(key, track, now, final=track.done))

    def _line(self, key: str, track: _LayerTrack, now: float, *, final: bool = False) -> str:
        assert track.total
        size = human_bytes(track.total, decimal=True)
        elapsed = now - track.start
        speed = (track.completed - track.start_bytes) / elapsed if elapsed > 0.5 else None
        rate = f"  {human_bytes(speed, decimal=True)}/s" if speed else ""
        if final:
            return f"  {short_digest(key)}  {size}  done{rate}"
        pct = 100 * track.completed / track.total
        eta = (track.total - track.completed) / speed if speed else None
        return (
            f"  {short_digest(key)}  {human_bytes(track.completed, decimal=True)} / {size}  {pct:3.0f}%"
            f"{rate or '  …'}  ETA {human_duration(eta)}"
        )


# -- JSON lines ----------------------------------------------------------------------------------------------


@dataclass
class JsonPullProgress:
    """`--json`: each phase change and at most one layer event per `interval` s per layer (plus its last)."""

    out: Output
    clock: Callable[[], float] = time.monotonic
    interval: float = 0.5
    sent: dict[str, float] = field(default_factory=dict)

    def __call__(self, event: PullPlan | PullEvent) -> None:
        if isinstance(event, PullPlan):
            self.out.event("plan", **vars(event))
            return
        if event.phase == "layer":
            key = event.digest or event.status
            now = self.clock()
            finished = bool(event.total) and event.completed == event.total
            if not finished and now - self.sent.get(key, -1e9) < self.interval:
                return
            self.sent[key] = now
        self.out.event("pull", **vars(event))


# -- rich live display ---------------------------------------------------------------------------------------


def _make_columns() -> list[Any]:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class LayerOnly(ProgressColumn):
        """Show the wrapped column for layer rows only (phase rows stay blank); a layer that was on disk
        already shows its note in the `note_here` column and nothing in the others."""

        def __init__(self, inner: ProgressColumn, *, note_here: bool = False) -> None:
            self.inner, self.note_here = inner, note_here
            super().__init__()

        def render(self, task: Task) -> Any:
            if task.fields.get("kind") != "layer":
                return Text("")
            if task.fields.get("reused"):
                return Text(task.fields.get("note", "") if self.note_here else "", style="dim")
            return self.inner.render(task)

    class PhaseMark(ProgressColumn):
        def __init__(self) -> None:
            self.spinner = SpinnerColumn()
            super().__init__()

        def render(self, task: Task) -> Any:
            if task.finished:
                return Text("✓", style="green")
            return self.spinner.render(task)

    return [
        PhaseMark(),
        TextColumn("{task.description}"),
        LayerOnly(BarColumn(bar_width=30)),
        LayerOnly(DownloadColumn(), note_here=True),
        LayerOnly(TransferSpeedColumn()),
        LayerOnly(TimeRemainingColumn()),
    ]


class RichPullProgress:
    """One bar per layer plus one row per phase, redrawn by rich at `refresh_per_second`."""

    def __init__(self, console: Console, *, refresh_per_second: float = 8.0) -> None:
        from rich.progress import Progress

        self.console = console
        self.progress: Progress = Progress(
            *_make_columns(), console=console, refresh_per_second=refresh_per_second, transient=False,
            speed_estimate_period=10.0,
        )
        self.tasks: dict[str, Any] = {}
        self.totals: dict[str, int] = {}
        self.phase_task: Any = None
        self.phase: str | None = None

    def __enter__(self) -> RichPullProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: PullPlan | PullEvent) -> None:
        if isinstance(event, PullPlan):
            self.progress.console.print(plan_line(event), highlight=False, markup=False)
            return
        if event.phase == "layer":
            self._layer(event)
        elif event.phase != self.phase:
            self._phase(event)

    def _phase(self, event: PullEvent) -> None:
        if self.phase_task is not None:
            self.progress.update(self.phase_task, total=1, completed=1)
        for key, task in self.tasks.items():  # the last tick of a layer can show less than 100 %
            if self.totals.get(key):
                self.progress.update(task, completed=self.totals[key])
        self.phase = event.phase
        if event.phase == "success":  # the command's summary says it
            self.phase_task = None
            return
        self.phase_task = self.progress.add_task(PHASE_TEXT.get(event.phase, event.status), total=None, kind="phase")

    def _layer(self, event: PullEvent) -> None:
        key = event.digest or event.status
        if event.total:
            self.totals[key] = event.total
        task = self.tasks.get(key)
        if task is None:
            if self.phase_task is not None and self.phase == "manifest":
                self.progress.update(self.phase_task, total=1, completed=1)
            self.phase = "layer"
            reused = bool(event.total) and event.completed == event.total
            note = f"{human_bytes(event.total, decimal=True)} already on disk" if reused else ""
            task = self.tasks[key] = self.progress.add_task(
                short_digest(key), total=event.total, completed=event.completed or 0, kind="layer",
                reused=reused, note=note,
            )
            return
        self.progress.update(task, total=event.total or None, completed=event.completed or 0)


@contextlib.contextmanager
def pull_display(out: Output) -> Iterator[Callable[[PullPlan | PullEvent], None]]:
    """The right progress form for this output: JSON events, a live display, or plain lines."""
    if out.json:
        yield JsonPullProgress(out)
        return
    if out.err.is_terminal and sys.stdout.isatty():
        with RichPullProgress(out.err) as display:
            yield display
        return
    yield PlainPullProgress(lambda line: out.err.print(line, highlight=False, markup=False, soft_wrap=True))


# -- transfers (import, export): one bar per phase -------------------------------------------------------------

TRANSFER_TEXT = {
    "hash": "checksum",
    "upload": "upload to Ollama",
    "verify": "verify checksums",
    "write": "write",
    "create": "create model",
    "check": "check",
}


@dataclass
class PlainTransferProgress:
    """A line at every 10 % of each phase (or every `interval` s), plus one per phase without a size."""

    write: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    interval: float = 10.0
    marks: dict[str, tuple[int, float]] = field(default_factory=dict)

    def __call__(self, event: TransferEvent) -> None:
        label = f"{TRANSFER_TEXT.get(event.phase, event.phase)} {event.item}".strip()
        now = self.clock()
        if not event.total:
            if event.phase not in self.marks:
                self.marks[event.phase] = (10, now)
                self.write(label)
            return
        decile = min(10, event.done * 10 // event.total)
        last_decile, last_time = self.marks.setdefault(event.phase, (0, now))
        if decile > last_decile or (decile < 10 and now - last_time >= self.interval):
            self.marks[event.phase] = (decile, now)
            pct = 100 * event.done / event.total
            self.write(f"{label}: {human_bytes(event.done, decimal=True)} / "
                       f"{human_bytes(event.total, decimal=True)} ({pct:.0f}%)")


@dataclass
class JsonTransferProgress:
    out: Output
    clock: Callable[[], float] = time.monotonic
    interval: float = 0.5
    sent: dict[str, float] = field(default_factory=dict)

    def __call__(self, event: TransferEvent) -> None:
        now = self.clock()
        finished = event.total is None or event.done >= event.total
        if not finished and now - self.sent.get(event.phase, -1e9) < self.interval:
            return
        self.sent[event.phase] = now
        self.out.event("transfer", **vars(event))


class RichTransferProgress:
    def __init__(self, console: Console, *, refresh_per_second: float = 8.0) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress: Progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=30), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), console=console, refresh_per_second=refresh_per_second,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> RichTransferProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: TransferEvent) -> None:
        task = self.tasks.get(event.phase)
        if task is None:
            label = f"{TRANSFER_TEXT.get(event.phase, event.phase)} {event.item}".strip()
            task = self.tasks[event.phase] = self.progress.add_task(label, total=event.total)
        self.progress.update(task, completed=event.done, total=event.total)


@contextlib.contextmanager
def transfer_display(out: Output) -> Iterator[Callable[[TransferEvent], None]]:
    if out.json:
        yield JsonTransferProgress(out)
        return
    if out.err.is_terminal and sys.stdout.isatty():
        with RichTransferProgress(out.err) as display:
            yield display
        return
    yield PlainTransferProgress(lambda line: out.err.print(line, highlight=False, markup=False, soft_wrap=True))

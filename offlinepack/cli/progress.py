"""Progress on stderr: on a terminal, bars whose columns fit its width; elsewhere (Kaggle logs, pipes) one plain
line per finished step, since a log cannot redraw a bar."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn)
from rich.text import Text

MIB = 1 << 20
# fixed columns beside the name: bar 12, amount 17, time 7, three gaps; the name gets the rest of the width
_FIXED = 12 + 17 + 7 + 3


def fit(text: str, width: int) -> str:
    """'nibabel-5.4.2-py3-none-any.whl' cut to `width` characters with an ellipsis; the start names the package."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def mib(size: float) -> str:
    return f"{size / MIB:.1f} MiB"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Amount(ProgressColumn):
    """'1.2/4.5 MiB' for a download; 'building' for an sdist, whose size is not known until it is built."""

    def render(self, task: Task) -> Text:
        if task.fields.get("building"):
            return Text("building".rjust(17), style="progress.download")
        if task.total is None:
            return Text(mib(task.completed).rjust(17), style="progress.download")
        return Text(f"{task.completed / MIB:.1f}/{mib(task.total)}".rjust(17), style="progress.download")


class _Time(ProgressColumn):
    """Time left for a download, time spent for a build (which has no size to count down)."""

    def render(self, task: Task) -> Text:
        if task.fields.get("building"):
            return Text(_clock(task.elapsed).rjust(7), style="progress.elapsed")
        return Text(_clock(task.time_remaining).rjust(7), style="progress.remaining")


class FileProgress:
    """`offlinepack build`'s downloads and sdist builds (offlinepack.wheelhouse Progress events)."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self.tasks: dict[str, Any] = {}
        self.started: dict[str, float] = {}
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=12), _Amount(), _Time(),
                                 console=console, transient=True, disable=not self.live)

    def __enter__(self) -> FileProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, event: Any) -> None:
        if not self.enabled:
            return
        key = f"{event.stage}:{event.filename}"
        building = event.stage == "build"
        self.started.setdefault(key, time.monotonic())
        if self.live:
            if key not in self.tasks:
                verb = "building" if building else "fetching"
                name = fit(event.filename, max(self.console.width - _FIXED - len(verb) - 2, 8))
                self.tasks[key] = self.progress.add_task(f"{verb} {name}", total=None if building else event.total,
                                                         building=building)
            if not building:
                self.progress.update(self.tasks[key], completed=event.done, total=event.total)
            if event.finished:
                self.progress.remove_task(self.tasks.pop(key))
        if event.finished:
            seconds = time.monotonic() - self.started.pop(key)
            if not self.live:  # a log: one line per file (a terminal has the bars, then the summary)
                what = f"built a wheel from {event.filename}" if building else f"fetched {event.filename} ({mib(event.done)})"
                self.console.print(f"{what} in {seconds:.1f} s", markup=False, highlight=False)


def volume_bar(console: Console) -> Progress:
    """`offlinepack run`'s bar over volumes: name column, bar, done/total, elapsed and ETA, within the width."""
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[eta]}"), console=console)


def volume_description(last_id: str | None, width: int) -> str:
    """'volumes (last: 1407735)', cut so that the bar's other columns (about 50 characters) still fit."""
    text = f"volumes (last: {last_id})" if last_id else "volumes"
    return fit(text, max(width - 52, 7))

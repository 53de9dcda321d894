"""How far a long command (replay, publish, generate, demo) has come, on stderr, so stdout stays its output.

On a terminal: a rich bar with the rate and the time left. Otherwise (a log file, CI, a pipe): a plain line
every `EVERY_S` seconds, so a long run is seen to be alive without filling the log. Callers report per batch
or per day, never per event: the bar's own cost stays out of the commands' speed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

EVERY_S = 5.0  # a plain progress line at most this often
Update = Callable[[int, int], None]  # (done, total), in the command's unit


class Rate(ProgressColumn):
    """Units a second (bytes as MB/s)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        return Text(_rate(task.speed, self.unit) if task.speed else "", style="progress.data.speed")


class Lines:
    """The plain form: `what: 45 % (12.3 of 27.1 MB), 3.2 MB/s, about 5 s left`, at most every `every_s`."""

    def __init__(
        self, what: str, unit: str, stream: TextIO, every_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.what, self.unit, self.stream, self.every_s, self.clock = what, unit, stream, every_s, clock
        self.started = self.printed = clock()

    def update(self, done: int, total: int) -> None:
        now = self.clock()
        if now - self.printed < self.every_s:
            return
        self.printed = now
        rate = done / max(now - self.started, 1e-9)
        share = f"{100 * done / total:.0f} %" if total else "?"
        left = f", about {(total - done) / rate:.0f} s left" if rate and total >= done else ""
        amounts = f"{_amount(done, self.unit).split()[0]} of {_amount(total, self.unit)}"
        print(f"{self.what}: {share} ({amounts}), {_rate(rate, self.unit)}{left}", file=self.stream, flush=True)


@contextmanager
def shown(what: str, total: int, unit: str, stream: TextIO | None = None) -> Iterator[Update]:
    """An `Update` for a task of about `total` units (`bytes`, `lines`...); a total may grow as the task learns."""
    out = stream or sys.stderr
    if not out.isatty():
        yield Lines(what, unit, out, EVERY_S).update
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), Rate(unit), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=out), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _amount(count: float, unit: str) -> str:
    return f"{count / 1e6:.1f} MB" if unit == "bytes" else f"{count:,.0f} {unit}"


def _rate(per_s: float, unit: str) -> str:
    return f"{per_s / 1e6:.1f} MB/s" if unit == "bytes" else f"{per_s:,.0f} {unit}/s"

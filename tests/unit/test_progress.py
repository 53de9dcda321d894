"""Progress of the long commands: plain lines, at most every few seconds, when stderr is not a terminal."""

from __future__ import annotations

import io

from uythac.entrypoints import progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_come_at_most_every_interval_with_share_rate_and_time_left() -> None:
    out, clock = io.StringIO(), Clock()
    lines = progress.Lines("replay p.jsonl.gz", "bytes", out, every_s=5.0, clock=clock)
    clock.now += 1
    lines.update(1_000_000, 10_000_000)  # too soon: nothing
    clock.now += 4
    lines.update(5_000_000, 10_000_000)
    clock.now += 2
    lines.update(6_000_000, 10_000_000)  # 2 s after the last line: nothing
    assert out.getvalue().splitlines() == ["replay p.jsonl.gz: 50 % (5.0 of 10.0 MB), 1.0 MB/s, about 5 s left"]


def test_other_units_are_counted_as_such() -> None:
    out, clock = io.StringIO(), Clock()
    lines = progress.Lines("generate p.jsonl", "lines", out, every_s=1.0, clock=clock)
    clock.now += 2
    lines.update(20_000, 80_000)
    assert out.getvalue() == "generate p.jsonl: 25 % (20,000 of 80,000 lines), 10,000 lines/s, about 6 s left\n"


def test_a_stream_that_is_no_terminal_gets_plain_lines() -> None:
    out = io.StringIO()
    with progress.shown("publish", 10, "bytes", out) as update:
        update(5, 10)
    assert out.getvalue() == ""  # nothing before the first interval, and no bar's escape codes


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_its_rate() -> None:
    out = Terminal()
    with progress.shown("replay p.jsonl", 10_000_000, "bytes", out) as update:
        update(2_000_000, 10_000_000)
        update(5_000_000, 10_000_000)
    assert "replay p.jsonl" in out.getvalue()

"""The cycle collector runs by work done (`collector.Collections`), and is given back as it was found."""

from __future__ import annotations

import gc
import logging
import weakref

import pytest

from uythac import cycles
from uythac.cycles import Collections


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


def _cycle() -> weakref.ref[_Node]:
    return weakref.ref(_Node())


def test_automatic_collection_is_off_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with Collections("test"):
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_found_off_stays_off() -> None:
    gc.disable()
    try:
        with Collections("test"):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_cycles_are_freed_once_enough_events_are_done() -> None:
    with Collections("test", every_events=100, every_s=3600) as collections:
        cycle = _cycle()
        collections.done(60)
        assert cycle() is not None  # not yet due
        collections.done(40)
        assert cycle() is None
        later = _cycle()
        collections.done(99)  # the count started again at the collection
        assert later() is not None


def test_collections_that_take_more_than_their_share_come_further_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """A collection's cost grows with what the process keeps: one that took a fifth of the time since the last
    makes the next wait ten times longer (SHARE: 2 %), and one that took nothing brings the spacing back."""
    clock = [0.0]
    monkeypatch.setattr(cycles.time, "monotonic", lambda: clock[0])
    cost = [0.0]
    monkeypatch.setattr(cycles.time, "perf_counter", lambda: clock[0])
    real = gc.collect

    def collect() -> int:
        clock[0] += cost[0]
        return real()

    monkeypatch.setattr(cycles.gc, "collect", collect)
    with Collections("test", every_events=100, every_s=3600) as collections:
        clock[0], cost[0] = 8.0, 2.0  # 8 s of work, then a collection of 2 s: 25 % of 8 s, 12.5 x SHARE
        collections.done(100)
        assert collections.spacing == pytest.approx(12.5)
        cycle = _cycle()
        collections.done(1_200)
        assert cycle() is not None  # 1 200 events: not yet due at 100 x 12.5
        clock[0], cost[0] = 200.0, 0.0
        collections.done(50)
        assert cycle() is None and collections.spacing == 1.0
        clock[0], cost[0] = 201.0, 100.0  # a collection far too costly: spaced out MAX_SPACING times at most
        collections.done(100)
        assert collections.spacing == cycles.MAX_SPACING


def test_a_quiet_process_collects_by_time() -> None:
    with Collections("test", every_events=10**9, every_s=0) as collections:
        cycle = _cycle()
        collections.done(0)
        assert cycle() is None


def test_a_collection_is_logged_with_what_collected_and_how_long(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="uythac.cycles")
    with Collections("worker", every_events=1) as collections:
        collections.done(1)
    (record,) = [r for r in caplog.records if r.getMessage() == "cycles collected"]
    assert record.component == "worker"  # type: ignore[attr-defined]
    assert record.events == 1 and record.seconds >= 0  # type: ignore[attr-defined]

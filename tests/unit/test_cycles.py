"""The cycle collector runs by work done (`collector.Collections`), and is given back as it was found."""

from __future__ import annotations

import gc
import logging
import weakref

import pytest

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

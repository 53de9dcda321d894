"""Month-end reports: when the clock passes a month end, the report at that day is kept for `?as_of=`.

What a kept report holds is fixed by the arrival order alone: the events that arrived before the
first event dated after the month end. Batch sizes, store restarts and ticks do not change it.
"""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integration.test_properties import provinces
from tests.reference import business_day, reference_report
from tests.support import inspect, kept_reports, loan, new_store, replay_into, tick
from uythac import bootstrap
from uythac.adapters.sql.schema import snapshots
from uythac.core.dates import month_end
from uythac.service.processor import oldest_kept

pytestmark = pytest.mark.usefixtures("store_kind")  # each test on SQLite, then PostgreSQL

MONTHS_KEPT = 24  # the default


def expected_reports(arrivals: list[dict[str, Any]]) -> dict[date, dict[str, Any]]:
    """Each month end the clock passed, of the latest MONTHS_KEPT: the reference report at it, of the
    events that came before the first one dated after it."""
    days = [business_day(event["occurred_at"]) for event in arrivals]
    expected: dict[date, dict[str, Any]] = {}
    if not days:
        return expected
    end, oldest = month_end(days[0]), oldest_kept(max(days), MONTHS_KEPT)
    while end < max(days):
        if end >= oldest:
            first_after = next(i for i, day in enumerate(days) if day > end)
            expected[end] = reference_report(arrivals[:first_after], as_of=end)
        end = month_end(end + timedelta(days=1))
    return expected


def test_a_month_end_passed_keeps_the_report_at_that_day(tmp_path: Path) -> None:
    db = new_store(tmp_path)
    replay_into(db, [loan("L1", "2024-01-20"), inspect("L1", "2024-01-25")])
    assert kept_reports(db) == {}
    replay_into(db, [loan("L2", "2024-01-31")])  # reaching the month end is not passing it
    assert kept_reports(db) == {}
    replay_into(db, [inspect("L2", "2024-03-02")])  # passes 31 January and 29 February (a leap year)
    kept = kept_reports(db)
    assert list(kept) == [date(2024, 1, 31), date(2024, 2, 29)]
    assert kept[date(2024, 1, 31)]["as_of"] == "2024-01-31"
    assert kept[date(2024, 2, 29)]["flags"] == [], "L2's deadline (1 March) is not yet past on 29 February"


def _stored_bytes(db: str) -> list[tuple[date, bytes]]:
    store = bootstrap.open_store(db)
    try:
        with store.reading() as uow:
            rows = uow.connection.execute(sa.select(snapshots.c.as_of, snapshots.c.report).order_by(snapshots.c.as_of))
            return [(as_of, bytes(report)) for as_of, report in rows]
    finally:
        store.close()


def test_the_same_events_keep_the_same_bytes_whenever_they_are_replayed(tmp_path: Path) -> None:
    events = [loan("L1", "2024-01-20"), inspect("L1", "2024-03-02")]
    first, second = new_store(tmp_path), new_store(tmp_path)
    replay_into(first, events)
    time.sleep(1.1)  # gzip's header holds a time in seconds unless it is given one
    replay_into(second, events)
    kept = _stored_bytes(first)
    assert len(kept) == 2
    assert kept == _stored_bytes(second)


def test_a_late_event_does_not_change_a_kept_report(tmp_path: Path) -> None:
    db = new_store(tmp_path)
    early = [loan("L1", "2024-01-01"), tick("2024-02-05")]
    replay_into(db, early)
    before = kept_reports(db)
    replay_into(db, [inspect("L1", "2024-01-20")])  # on time, but entered after January was reported
    assert kept_reports(db) == before
    assert before[date(2024, 1, 31)] == reference_report(early[:1], as_of=date(2024, 1, 31))


def test_a_tick_past_month_ends_keeps_each_of_them(tmp_path: Path) -> None:
    db = new_store(tmp_path)
    replay_into(db, [loan("L1", "2024-11-10")])
    replay_into(db, [], as_of=date(2025, 1, 15))
    assert list(kept_reports(db)) == [date(2024, 11, 30), date(2024, 12, 31)]


def test_only_the_latest_month_ends_are_kept(tmp_path: Path) -> None:
    db = new_store(tmp_path)
    replay_into(db, [loan("L1", "2020-01-10")])
    replay_into(db, [], as_of=date(2024, 3, 15))
    kept = list(kept_reports(db))
    assert len(kept) == MONTHS_KEPT and (kept[0], kept[-1]) == (date(2022, 3, 31), date(2024, 2, 29))
    replay_into(db, [tick("2024-04-01")])
    assert list(kept_reports(db)) == [*kept[1:], date(2024, 3, 31)]


@settings(max_examples=30, deadline=None)
@given(events=provinces(), seed=st.integers(0, 2**32))
def test_kept_reports_depend_on_arrival_order_only(tmp_path: Path, events: list[dict[str, Any]], seed: int) -> None:
    rng = random.Random(seed)
    arrivals = events[:]
    rng.shuffle(arrivals)
    db = new_store(tmp_path, "kept")
    done = 0
    while done < len(arrivals):  # several replays onto one store, each in batches and a cache of its own size
        step = rng.randint(1, 12)
        replay_into(db, arrivals[done : done + step], batch_size=rng.randint(1, 5), cache_limit=rng.randint(1, 20))
        done += step
    assert kept_reports(db) == expected_reports(arrivals)

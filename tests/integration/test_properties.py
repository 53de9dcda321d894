"""Properties of the contract's clock and order rule: the report is a pure function of the set of accepted events.

Random small provinces (two communes, two organizations, a handful of groups and loans over two
years, inspections clustered around deadlines) are replayed in many ways; each way must give the
report that `tests/reference.py` computes from scratch. Some events name another unit than their loan's
or group's (a producer's mistake, or an attack), and some loans and groups are disbursed or registered
twice, in two units: what counts then depends on which disbursement or registration is the earliest.

For the other inspection duties (contract §7) loans are left without activity for stretches of 80-130
days, loan inspections (mostly `follow_up`) land around the opening day O and the deadline E of those
stretches, periodic inspections around 31/12 and 01/01, and clock ticks (and `as_of` days) near O, E, E + 1,
a group's 90th day, 31/12 and 01/01. Half the provinces with ticks end on the last one: T is that day.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference import reference_report
from tests.support import new_store, replay_into, report_at, report_of

pytestmark = pytest.mark.usefixtures("store_kind")  # each test on SQLite, then PostgreSQL

START = date(2023, 1, 1)
UNITS = [("D01", "C0001", "HND"), ("D01", "C0001", "HPN"), ("D02", "C0002", "HND")]
YEAR_ENDS = [date(2022, 12, 31), date(2023, 12, 31), date(2024, 12, 31)]


def _when(day: date, style: int) -> str:
    """The same business day written three ways (a UTC date-time 20:00 the day before is this day in Vietnam)."""
    if style == 0:
        return day.isoformat()
    if style == 1:
        return f"{day.isoformat()}T09:30:00+07:00"
    return f"{(day - timedelta(days=1)).isoformat()}T20:00:00Z"


def _province(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[date]]:
    """A province's events, and the days where a clock tick or an `as_of` is worth landing (O - 1, O, E and
    E + 1 of each stretch a loan may be inactive from, a group's 89th and 90th day, 31/12 and 01/01)."""
    events: list[dict[str, Any]] = []
    days: list[date] = []
    landmarks: list[date] = [day + timedelta(days=k) for day in YEAR_ENDS for k in (0, 1)]
    loan_marks: list[date] = []  # the loans' ones alone
    counter = iter(range(1_000_000))

    def add(event_type: str, day: date, unit: tuple[str, str, str], **fields: Any) -> None:
        days.append(day)
        district, commune, org = unit
        event = {
            "event_id": f"x{next(counter)}",
            "type": event_type,
            "occurred_at": _when(day, draw(st.integers(0, 2))),
        }
        if event_type != "clock.tick":
            event.update({"district_id": district, "commune_id": commune, "org": org})
        event.update(fields)
        events.append(event)

    offset = st.integers(0, 700)

    def own_or_not(unit: tuple[str, str, str]) -> tuple[str, str, str]:
        """Mostly the entity's own unit; one time in six any unit (the same one, or another)."""
        return draw(st.sampled_from(UNITS)) if draw(st.integers(0, 5)) == 0 else unit

    def near_a_year_end() -> date:
        """30/12, 31/12, 01/01 or 02/01 of one of three years."""
        return draw(st.sampled_from(YEAR_ENDS)) + timedelta(days=draw(st.integers(-1, 2)))

    groups = [f"G{i}" for i in range(draw(st.integers(1, 4)))]
    for group_id in groups:
        unit = draw(st.sampled_from(UNITS))
        if draw(st.integers(0, 3)) == 0:  # around 90 days before a 31/12: does it owe last year's inspection?
            registered = draw(st.sampled_from(YEAR_ENDS)) - timedelta(days=draw(st.integers(89, 91)))
        else:
            registered = START + timedelta(days=draw(st.integers(-200, 500)))
        landmarks.extend(registered + timedelta(days=k) for k in (89, 90))
        add("group.registered", registered, unit, group_id=group_id)
        if draw(st.integers(0, 7)) == 0:  # registered again, in any unit, on another day
            add(
                "group.registered",
                registered + timedelta(days=draw(st.integers(-30, 30))),
                own_or_not(unit),
                group_id=group_id,
            )
        if draw(st.integers(0, 5)) == 0:
            add("group.closed", START + timedelta(days=draw(offset)), own_or_not(unit), group_id=group_id)
        for _ in range(draw(st.integers(0, 3))):
            day = START + timedelta(days=draw(offset))
            add("savings.deposited", day, own_or_not(unit), group_id=group_id, amount=10_000)
        for _ in range(draw(st.integers(0, 2))):
            result = draw(st.sampled_from(["compliant", "misuse"]))
            add(
                "inspection.recorded",
                START + timedelta(days=draw(offset)),
                own_or_not(unit),
                kind="periodic",
                group_id=group_id,
                result=result,
            )
        if draw(st.booleans()):  # the group of the year: on the last day of one year or the first of the next
            add(
                "inspection.recorded",
                near_a_year_end(),
                own_or_not(unit),
                kind="periodic",
                group_id=group_id,
                result=draw(st.sampled_from(["compliant", "misuse"])),
            )
    for n in range(draw(st.integers(0, 6))):
        loan_id, unit = f"L{n}", draw(st.sampled_from(UNITS))
        disbursed = START + timedelta(days=draw(offset))
        amount = draw(st.integers(1, 20)) * 1_000_000
        group_id = draw(st.sampled_from(groups))
        add("loan.disbursed", disbursed, unit, loan_id=loan_id, group_id=group_id, amount=amount)
        if draw(st.integers(0, 7)) == 0:  # disbursed again, in any unit, on another day
            again = disbursed + timedelta(days=draw(st.integers(-30, 30)))
            add("loan.disbursed", again, own_or_not(unit), loan_id=loan_id, group_id=groups[0], amount=amount)
        for _ in range(draw(st.integers(0, 2))):  # around the deadline: before, on time, on day 30/31, late
            day = disbursed + timedelta(days=draw(st.integers(-2, 40)))
            add(
                "inspection.recorded",
                day,
                own_or_not(unit),
                kind="post_disbursement",
                loan_id=loan_id,
                result=draw(st.sampled_from(["compliant", "misuse"])),
            )
        activity = [disbursed]  # days a stretch without activity may start from
        if draw(st.booleans()):  # repayments anywhere in 200 days
            for _ in range(draw(st.integers(0, 3))):
                principal = draw(st.sampled_from([0, 1_000_000, amount]))
                day = disbursed + timedelta(days=draw(st.integers(0, 200)))
                add("repayment.recorded", day, own_or_not(unit), loan_id=loan_id, principal=principal, interest=50_000)
                activity.append(day)
        else:  # repayments 80-130 days apart: each gap ends before O, between O and E, or after E
            day = disbursed
            for _ in range(draw(st.integers(1, 2))):
                day += timedelta(days=draw(st.integers(80, 130)))
                principal = draw(st.sampled_from([0, 0, 1_000_000, amount]))
                add("repayment.recorded", day, own_or_not(unit), loan_id=loan_id, principal=principal, interest=50_000)
                activity.append(day)
        for start in activity:
            loan_marks.extend(start + timedelta(days=k) for k in (89, 90, 120, 121))
        for _ in range(draw(st.integers(0, 2))):  # visits around a stretch's O (day 90) and E (day 120)
            day = draw(st.sampled_from(activity)) + timedelta(days=draw(st.integers(85, 125)))
            kind = draw(st.sampled_from(["follow_up", "follow_up", "post_disbursement", "periodic"]))
            subject = {"group_id": group_id, "loan_id": loan_id} if kind == "periodic" else {"loan_id": loan_id}
            result = draw(st.sampled_from(["compliant", "misuse"]))
            add("inspection.recorded", day, own_or_not(unit), kind=kind, result=result, **subject)
        for _ in range(draw(st.integers(0, 2))):
            day = disbursed + timedelta(days=draw(st.integers(0, 200)))
            add(
                "loan.overdue_changed",
                day,
                own_or_not(unit),
                loan_id=loan_id,
                overdue_principal=draw(st.sampled_from([0, 50_000, 500_000, amount * 2])),
            )
    landmarks += loan_marks
    ticks = []
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, 3))
        if where == 0:
            ticks.append(START + timedelta(days=draw(st.integers(0, 800))))
        else:
            ticks.append(draw(st.sampled_from(loan_marks if where < 3 and loan_marks else landmarks)))
        add("clock.tick", ticks[-1], UNITS[0])
    if ticks and draw(st.booleans()):  # the province as it stood on its last tick: T is that day
        events = [event for event, day in zip(events, days, strict=True) if day <= ticks[-1]]
    return events, landmarks


@st.composite
def provinces(draw: st.DrawFn) -> list[dict[str, Any]]:
    return _province(draw)[0]


@st.composite
def provinces_and_days(draw: st.DrawFn) -> tuple[list[dict[str, Any]], date]:
    """A province and a day to read it at: any day of its years, or one of its landmarks."""
    events, landmarks = _province(draw)
    if draw(st.booleans()):
        return events, START + timedelta(days=draw(st.integers(0, 800)))
    return events, draw(st.sampled_from(landmarks))


@settings(max_examples=60)
@given(events=provinces(), batch=st.integers(1, 9))
def test_replay_equals_the_reference(tmp_path: Path, events: list[dict[str, Any]], batch: int) -> None:
    assert report_of(tmp_path, events, batch_size=batch) == reference_report(events)


@settings(max_examples=40)
@given(events=provinces(), batch=st.integers(1, 9), limit=st.integers(1, 3))
def test_a_processor_that_keeps_few_entities_gives_the_same_report(
    tmp_path: Path, events: list[dict[str, Any]], batch: int, limit: int
) -> None:
    """Loans and groups dropped from the processor's cache between batches are read back from the store."""
    assert report_of(tmp_path, events, batch_size=batch, cache_limit=limit) == reference_report(events)


@settings(max_examples=40)
@given(events=provinces(), seed=st.integers(0, 2**32), batch=st.integers(1, 9))
def test_shuffled_and_duplicated_input_gives_the_same_report(
    tmp_path: Path, events: list[dict[str, Any]], seed: int, batch: int
) -> None:
    rng = random.Random(seed)
    noisy = events + [dict(rng.choice(events)) for _ in range(len(events) // 3)] if events else []
    rng.shuffle(noisy)
    assert report_of(tmp_path, noisy, batch_size=batch) == report_of(tmp_path, events)


@settings(max_examples=30)
@given(events=provinces(), seed=st.integers(0, 2**32), parts=st.integers(2, 4))
def test_split_across_replays_onto_one_store_gives_the_same_report(
    tmp_path: Path, events: list[dict[str, Any]], seed: int, parts: int
) -> None:
    rng = random.Random(seed)
    shuffled = events[:]
    rng.shuffle(shuffled)
    db = new_store(tmp_path, "split")
    for part in range(parts):
        replay_into(db, shuffled[part::parts], batch_size=rng.randint(1, 5))
    assert report_at(db) == reference_report(events)


@settings(max_examples=25)
@given(events=provinces(), seed=st.integers(0, 2**32))
def test_after_every_batch_the_incremental_state_equals_a_recomputation(
    tmp_path: Path, events: list[dict[str, Any]], seed: int
) -> None:
    rng = random.Random(seed)
    order = events[:]
    rng.shuffle(order)
    db = new_store(tmp_path, "prefix")
    done = 0
    while done < len(order):
        step = rng.randint(1, 4)
        replay_into(db, order[done : done + step])
        done += step
        assert report_at(db) == reference_report(order[:done])


@settings(max_examples=25)
@given(province=provinces_and_days())
def test_as_of_equals_the_reference_at_that_day(tmp_path: Path, province: tuple[list[dict[str, Any]], date]) -> None:
    events, as_of = province
    assert report_of(tmp_path, events, as_of=as_of) == reference_report(events, as_of=as_of)

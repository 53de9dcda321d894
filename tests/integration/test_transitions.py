"""What other services hear of (through `Processor`): flags raised and cleared, misuse found, inactive loans'
duties opened, missed and done.

Each transition happens once, when the state changes, whatever the order the events arrive in; a
state that ends where it began says nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support import CARD, follow_up, group, inspect, loan, new_store, periodic, repay, tick
from uythac.adapters.sql.store import Store
from uythac.core.events import Event, parse
from uythac.core.outcome import Outcome
from uythac.core.outputs import Topics, messages
from uythac.service.processor import Processor

pytestmark = pytest.mark.usefixtures("store_kind")  # each test on SQLite, then PostgreSQL

d = date(2023, 3, 1)
D = d + timedelta(days=30)


def _events(*items: dict[str, Any]) -> list[tuple[int, Event]]:
    parsed = [parse(json.dumps(item)) for item in items]
    assert all(isinstance(p, Event) for p in parsed)
    return [(n, p) for n, p in enumerate(parsed) if isinstance(p, Event)]


def _said(outcome: Outcome) -> list[tuple[str, str, str]]:
    return [(t.change, t.subject, t.cause) for t in outcome.transitions]


_opened: list[Store] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    """A PostgreSQL connection left to the garbage collector warns (and warnings fail tests)."""
    yield
    while _opened:
        _opened.pop().close()


def _processor(tmp_path: Path) -> Processor:
    _opened.append(Store.at(new_store(tmp_path)))
    return Processor(_opened[-1], CARD, 24, 250_000)


def test_missed_deadline_raises_a_flag_caused_by_the_clock(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    assert _said(processor.process(_events(loan("L1", d)))) == []
    assert _said(processor.process(_events(tick(D)))) == []
    after = D + timedelta(days=1)
    assert _said(processor.process(_events(tick(after)))) == [("flag.raised", "L1", f"clock:{after}")]


def test_on_time_inspection_entered_late_clears_the_flag_it_names(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    processor.process(_events(loan("L1", d), tick(D + timedelta(days=5))))
    visit = inspect("L1", D, event_id="visit-1")
    assert _said(processor.process(_events(visit))) == [("flag.cleared", "L1", "visit-1")]
    assert _said(processor.process(_events(tick(D + timedelta(days=9))))) == []


def test_late_inspection_says_nothing_and_the_flag_stays(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    processor.process(_events(loan("L1", d), tick(D + timedelta(days=5))))
    assert _said(processor.process(_events(inspect("L1", D + timedelta(days=2))))) == []


def test_disbursement_arriving_after_its_on_time_inspection_raises_nothing(tmp_path: Path) -> None:
    """Even when the clock is already past the deadline: never a flag raised and cleared in one breath."""
    processor = _processor(tmp_path)
    processor.process(_events(inspect("L1", d + timedelta(days=3)), tick(D + timedelta(days=20))))
    assert _said(processor.process(_events(loan("L1", d)))) == []


def test_flag_and_inspection_in_one_batch_say_nothing(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    processor.process(_events(loan("L1", d)))
    assert _said(processor.process(_events(tick(D + timedelta(days=4)), inspect("L1", D)))) == []


def test_misuse_is_found_once_by_a_post_disbursement_or_a_periodic_inspection(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    found = inspect("L1", d, event_id="m-1", result="misuse")
    assert _said(processor.process(_events(loan("L1", d), found))) == [("misuse.found", "L1", "m-1")]
    again = inspect("L1", d + timedelta(days=2), event_id="m-2", result="misuse")
    assert _said(processor.process(_events(again, found))) == []
    group_visit = periodic("G1", d, event_id="m-3", result="misuse")
    assert _said(processor.process(_events(group("G1", d), group_visit))) == [("misuse.found", "G1", "m-3")]


def test_misuse_found_before_the_disbursement_is_told_when_the_loan_is_known(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    assert _said(processor.process(_events(inspect("L1", d, event_id="m-1", result="misuse")))) == []
    said = _said(processor.process(_events(loan("L1", d, event_id="disbursal-1"))))
    assert said == [("misuse.found", "L1", "disbursal-1")]


def test_misuse_named_in_another_unit_says_nothing_of_the_loan(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    processor.process(_events(loan("L1", d)))  # in C0001/HND
    elsewhere = inspect("L1", d, event_id="m-1", result="misuse", commune_id="C0009")
    assert _said(processor.process(_events(elsewhere))) == []


# inactive loans' duties: L1 disbursed on 01/03/2023 and never repaid; O = 30/05, E = 29/06 ----------------
OPENED = d + timedelta(days=90)
E = OPENED + timedelta(days=30)


def _duties(outcome: Outcome) -> list[tuple[str, str, str, str]]:
    return [
        (t.change, t.subject, t.day.isoformat(), t.cause) for t in outcome.transitions if t.change.startswith("duty.")
    ]


def test_an_inactive_loans_duty_opens_on_day_90_and_is_missed_the_day_after_its_deadline(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    processor.process(_events(loan("L1", d), tick(OPENED - timedelta(days=1))))
    said = processor.process(_events(tick(OPENED)))
    assert _duties(said) == [("duty.opened", "L1", OPENED.isoformat(), f"clock:{OPENED}")]
    assert _duties(processor.process(_events(tick(E)))) == []
    missed = processor.process(_events(tick(E + timedelta(days=1))))
    assert _duties(missed) == [("duty.missed", "L1", E.isoformat(), f"clock:{E + timedelta(days=1)}")]
    visit = follow_up("L1", E, event_id="visit-1")  # on the deadline, entered late
    assert _duties(processor.process(_events(visit))) == [("duty.done", "L1", E.isoformat(), "visit-1")]
    assert _duties(processor.process(_events(tick(E + timedelta(days=40))))) == []


def test_a_duty_opened_and_missed_in_one_batch_says_both_in_order(tmp_path: Path) -> None:
    """The batch takes the clock past two month ends: each change is caused by the month end it happened by."""
    processor = _processor(tmp_path)
    processor.process(_events(loan("L1", d)))
    said = _duties(processor.process(_events(tick(E + timedelta(days=3)))))
    opened, missed = (
        ("duty.opened", "L1", "2023-05-30", "clock:2023-05-31"),
        ("duty.missed", "L1", "2023-06-29", "clock:2023-06-30"),
    )
    assert said == [opened, missed]
    processor = _processor(tmp_path / "again")
    processor.process(_events(loan("L1", d), tick(OPENED - timedelta(days=1))))
    said = _duties(processor.process(_events(tick(OPENED + timedelta(days=1)))))
    assert said == [("duty.opened", "L1", "2023-05-30", "clock:2023-05-31")]


def test_a_repayment_ends_the_duty_without_a_word_and_the_next_stretch_opens_another(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    processor.process(_events(loan("L1", d), tick(OPENED + timedelta(days=5))))
    paid = OPENED + timedelta(days=10)
    assert _duties(processor.process(_events(repay("L1", paid)))) == []
    again = paid + timedelta(days=90)
    assert _duties(processor.process(_events(tick(again)))) == [
        ("duty.opened", "L1", again.isoformat(), f"clock:{again}")
    ]


def test_an_inspection_before_the_duty_opened_does_not_do_it(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    early = follow_up("L1", OPENED - timedelta(days=1), event_id="early")
    assert _duties(processor.process(_events(loan("L1", d), early, tick(OPENED)))) == [
        ("duty.opened", "L1", OPENED.isoformat(), f"clock:{OPENED}")
    ]
    on_time = follow_up("L1", OPENED, event_id="on-time")
    assert _duties(processor.process(_events(on_time))) == [("duty.done", "L1", OPENED.isoformat(), "on-time")]


def test_duty_messages_say_which_duty_and_its_days(tmp_path: Path) -> None:
    processor = _processor(tmp_path)
    processor.process(_events(loan("L1", d)))
    outcome = processor.process(
        _events(tick(E + timedelta(days=3)), follow_up("L1", E + timedelta(days=2), event_id="late"))
    )
    ids = iter(f"out-{n}" for n in range(100))
    sent = [
        json.loads(m.value)
        for m in messages(outcome, processor.score, ids, Topics("flags", "scores"))
        if m.topic == "flags"
    ]
    duties = [m for m in sent if m["type"].startswith("duty.")]
    common = {
        "loan_id": "L1",
        "district_id": "D01",
        "commune_id": "C0001",
        "org": "HND",
        "duty": "inactive_loan",
        "inactive_since": d.isoformat(),
        "opened_on": OPENED.isoformat(),
        "deadline": E.isoformat(),
    }
    assert [{k: v for k, v in m.items() if k != "event_id"} for m in duties] == [
        {"type": "duty.opened", "occurred_at": OPENED.isoformat(), "cause": "clock:2023-05-31", **common},
        {
            "type": "duty.missed",
            "occurred_at": E.isoformat(),
            "cause": "clock:2023-06-30",
            **common,
            "late_inspection_on": None,  # missed by the month end 30/06; the late visit is dated 01/07
        },
    ]


def test_only_events_naming_a_known_loan_with_another_unit_are_counted_as_such(tmp_path: Path) -> None:
    """A repayment that arrives before its loan's disbursement waits for it: it names no other unit."""
    processor = _processor(tmp_path)
    early = repay("L1", d + timedelta(days=10), event_id="early")
    assert processor.process(_events(early)).other_unit == set()
    processor.process(_events(loan("L1", d)))
    elsewhere = repay("L1", d + timedelta(days=20), event_id="elsewhere", commune_id="C0009")
    assert processor.process(_events(elsewhere)).other_unit == {"elsewhere"}

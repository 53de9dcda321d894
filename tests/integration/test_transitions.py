"""What other services hear of (through `Processor`): flags raised and cleared, misuse found.

Each transition happens once, when the state changes, whatever the order the events arrive in; a
state that ends where it began says nothing.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.support import CARD, group, inspect, loan, periodic, tick
from uythac.adapters.sql.store import Store
from uythac.core.events import Event, parse
from uythac.core.outcome import Outcome
from uythac.service.processor import Processor

d = date(2023, 3, 1)
D = d + timedelta(days=30)


def _events(*items: dict[str, Any]) -> list[tuple[int, Event]]:
    parsed = [parse(json.dumps(item)) for item in items]
    assert all(isinstance(p, Event) for p in parsed)
    return [(n, p) for n, p in enumerate(parsed) if isinstance(p, Event)]


def _said(outcome: Outcome) -> list[tuple[str, str, str]]:
    return [(t.change, t.subject, t.cause) for t in outcome.transitions]


def _processor(tmp_path: Path) -> Processor:
    return Processor(Store.at(tmp_path / "store.db"), CARD, 24, 250_000)


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

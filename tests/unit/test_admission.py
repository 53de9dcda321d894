"""Which events the API may hand to Kafka for a caller: ids placed by the store, not by the event's word."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from tests.examples import variant
from uythac.core.admission import Known, conflicts, refusal
from uythac.core.areas import EVERYWHERE, Area
from uythac.core.events import Event, parse

D01 = Area(district_id="D01")
KNOWN = Known(
    districts={"C0001": "D01", "C0101": "D02"},
    loans={"L1": ("D01", "C0001", "HND"), "L8": ("D02", "C0101", "HND")},
    groups={"G1": ("D01", "C0001", "HND"), "G4": ("D02", "C0101", "HND")},
    clock=date(2024, 3, 31),
)


def _event(event_type: str, **changes: Any) -> Event:
    event = parse(json.dumps(variant(event_type, **changes)))
    assert isinstance(event, Event)
    return event


def _why(event: Event, area: Area = D01, past_days: int = 365) -> tuple[int, str] | None:
    found = refusal(event, area, KNOWN, past_days)
    return None if found is None else (found.status, found.field)


def test_an_event_whose_ids_the_store_places_in_its_own_unit_is_admitted() -> None:
    assert _why(_event("repayment.recorded", loan_id="L1", occurred_at="2024-03-01")) is None
    assert _why(_event("loan.disbursed", loan_id="L-new", group_id="G1", occurred_at="2024-03-01")) is None


def test_a_loan_or_group_of_another_area_is_403_whatever_the_event_says() -> None:
    assert _why(_event("inspection.recorded", loan_id="L8", occurred_at="2024-03-01")) == (403, "loan_id")
    assert _why(_event("savings.deposited", group_id="G4", occurred_at="2024-03-01")) == (403, "group_id")


def test_a_loan_of_another_unit_inside_the_area_is_a_409_conflict() -> None:
    assert _why(_event("repayment.recorded", loan_id="L1", org="HPN", occurred_at="2024-03-01")) == (409, "loan_id")


def test_a_commune_is_where_the_store_says_and_a_new_one_needs_the_provinces_key() -> None:
    moved = _event("group.registered", group_id="G9", commune_id="C0101", occurred_at="2024-03-01")
    assert _why(moved) == (403, "commune_id")
    assert _why(moved, EVERYWHERE) == (409, "commune_id")
    new = _event("group.registered", group_id="G9", commune_id="C0999", occurred_at="2024-03-01")
    assert _why(new) == (403, "commune_id")
    assert _why(new, EVERYWHERE) is None


def test_a_scoped_key_may_date_an_event_at_most_the_setting_before_t() -> None:
    edge = _event("group.registered", group_id="G9", occurred_at="2023-04-01")  # T - 365
    assert _why(edge) is None
    assert _why(_event("group.registered", group_id="G9", occurred_at="2023-03-31")) == (403, "occurred_at")
    assert _why(_event("group.registered", group_id="G9", occurred_at="2000-01-01"), past_days=0) is None
    assert _why(_event("group.registered", group_id="G9", occurred_at="2000-01-01"), EVERYWHERE) is None


def test_only_the_provinces_key_moves_the_clock() -> None:
    assert _why(_event("clock.tick")) == (403, "type")
    assert _why(_event("clock.tick"), EVERYWHERE) is None


def test_an_organizations_key_is_refused_another_organizations_unit_naming_org() -> None:
    hnd_d01 = Area(district_id="D01", org="HND")
    assert _why(_event("repayment.recorded", loan_id="L1", occurred_at="2024-03-01"), hnd_d01) is None
    other = _event("group.registered", group_id="G9", org="HPN", occurred_at="2024-03-01")
    assert _why(other, hnd_d01) == (403, "org")
    assert _why(other, Area(org="HND")) == (403, "org")
    elsewhere = _event("group.registered", group_id="G9", commune_id="C0101", district_id="D02", org="HPN")
    assert _why(elsewhere, hnd_d01) == (403, "commune_id")  # the place first


def test_an_event_id_held_with_other_content_is_a_conflict_and_the_same_event_is_not() -> None:
    first = _event("group.registered", group_id="G9", occurred_at="2024-03-01", event_id="e-1")
    changed = _event("group.registered", group_id="G8", occurred_at="2024-03-01", event_id="e-1")
    known = Known(digests={"e-1": first.digest})
    assert conflicts([first], known) == {}
    [(index, refused)] = conflicts([first, changed], known).items()
    assert (index, refused.status, refused.field) == (1, 409, "event_id") and "store holds" in refused.detail
    [(index, refused)] = conflicts([first, changed], Known()).items()  # within one request
    assert index == 1 and "earlier event of this request" in refused.detail

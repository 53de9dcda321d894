"""Whether the API may hand an event to Kafka for a caller: every id the event names must belong where the event
says, by what the store knows, and inside the caller's area.

The event's own words are not enough: a district key could name its own district and another district's loan,
or a known commune of another district. So the commune's known district, the loan's unit and the group's unit
are read from the store (`Known`), and the event is refused when they disagree with it (409, a conflict) or
lie outside the caller's area (403). A key scoped below the province may not introduce a commune the store has
never seen, nor date an event long before the clock T (a correction that old is the bank's, not a district's).
Loans and groups not known yet may be named: their disbursement or registration may come later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from uythac.core.areas import EVERYWHERE, Area
from uythac.core.events import Event

Place = tuple[str, str, str]  # (district_id, commune_id, org)


@dataclass(frozen=True)
class Known:
    """What the store knows of the ids a request's events name."""

    districts: Mapping[str, str] = field(default_factory=dict)  # commune_id → its district
    loans: Mapping[str, Place] = field(default_factory=dict)  # loan_id → its unit, for disbursed loans
    groups: Mapping[str, Place] = field(default_factory=dict)  # group_id → its unit, for registered groups
    clock: date | None = None  # T
    digests: Mapping[str, bytes] = field(default_factory=dict)  # event_id → digest, for events already applied


@dataclass(frozen=True)
class Refusal:
    status: int  # 403: outside the caller's area; 409: the store says otherwise
    field: str
    detail: str


def refusal(event: Event, area: Area, known: Known, past_days: int) -> Refusal | None:
    """Why this event may not be admitted for a caller of `area`, or None. `past_days`: how far before T a key
    scoped below the province may date an event (0: no bound)."""
    if event.unit is None:  # a clock.tick: only the province's keys may move the clock
        return None if area == EVERYWHERE else Refusal(403, "type", "a clock.tick needs a key of scope all")
    data = event.data
    district, commune, org = data["district_id"], data["commune_id"], data["org"]
    if not area.covers(district, commune, org):
        name = "org" if area.covers(district, commune, area.org) else "commune_id"
        return Refusal(403, name, f"{district}/{commune}/{org} is outside the area of this API key")
    scoped = area != EVERYWHERE
    if scoped and past_days and known.clock is not None and event.day < known.clock - timedelta(days=past_days):
        return Refusal(
            403,
            "occurred_at",
            f"more than {past_days} days before the clock T ({known.clock}): a key of scope all only",
        )
    known_district = known.districts.get(commune)
    if known_district is None and scoped:
        return Refusal(403, "commune_id", f"{commune} is a commune the store has never seen: a key of scope all only")
    if known_district is not None and known_district != district:
        return _elsewhere(area, "commune_id", f"commune {commune}", (known_district, commune, org), f"in {district}")
    for name, units in (("loan_id", known.loans), ("group_id", known.groups)):
        entity_id = data.get(name)
        place = None if entity_id is None else units.get(entity_id)
        if place is not None and place[1:] != (commune, org):
            noun = "loan" if name == "loan_id" else "group"
            return _elsewhere(area, name, f"{noun} {entity_id}", place, f"of {commune}/{org}")
    return None


def conflicts(events: Sequence[Event], known: Known) -> dict[int, Refusal]:
    """The events (by index) whose id the store, or an earlier event of the same request, holds with other content:
    the worker would dead-letter them as conflicts. The same id with the same content is a harmless duplicate."""
    digests = dict(known.digests)
    found = {}
    for index, event in enumerate(events):
        held = digests.setdefault(event.event_id, event.digest)
        if held != event.digest:
            where = "the store holds" if event.event_id in known.digests else "an earlier event of this request has"
            found[index] = Refusal(409, "event_id", f"{where} {event.event_id} with other content: use a new event_id")
    return found


def _elsewhere(area: Area, name: str, what: str, place: Place, said: str) -> Refusal:
    """The store puts `what` at `place`, not where the event says: outside the caller's area, or a conflict."""
    district, commune, org = place
    where = f"{commune}/{org} in {district}" if name != "commune_id" else f"{district}"
    if not area.covers(district, commune, org):
        return Refusal(403, name, f"{what} belongs to {where}, outside the area of this API key")
    return Refusal(409, name, f"{what} belongs to {where}, not {said} as this event says")

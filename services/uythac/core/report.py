"""The machine-readable report (docs/contract.md, "The report"): units with their five components and their
duties, flags, the open inactive-loan duties, distribution.

`build` is pure: counts in, JSON-ready dict out. `render` fixes the bytes (key order as in the contract,
2-space indent, UTF-8), so a replay and the worker produce identical files from the same events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache, partial
from typing import Any, NamedTuple

import orjson

from uythac.core.model import Counts, DutyStatus, Loan, Unit, UnitKey
from uythac.core.scorecard import CLASSES, Scorecard, Windows, as_number
from uythac.schemas.events import ORGS

RATIOS: dict[str, tuple[str, str]] = {  # component → (numerator, denominator) fields of Counts
    "post_disbursement_inspection": ("loans_inspected", "loans_assessed"),
    "periodic_inspection": ("groups_inspected", "groups_seasoned"),
    "overdue_ratio": ("overdue", "outstanding"),
    "inactive_loans": ("loans_inactive", "loans_seasoned"),
    "savings_activity": ("groups_with_deposit", "groups_saving_age"),
}
# The scorecard reads Counts' fields before the duties' counts, which score nothing: a score is remembered by
# `counts[:SCORED]`, so that a duty opening or done leaves a unit's remembered score in place.
SCORED = Counts._fields.index("inactive_pending")
_AT = {key: (Counts._fields.index(n), Counts._fields.index(d)) for key, (n, d) in RATIOS.items()}
assert all(max(places) < SCORED for places in _AT.values())


@dataclass(frozen=True)
class ComponentScore:
    key: str
    points: int  # hundredths
    max: int  # hundredths
    numerator: int
    denominator: int


@dataclass(frozen=True)
class UnitScore:
    score: int  # hundredths
    rating: str  # the class: tot | kha | trung_binh | yeu
    components: tuple[ComponentScore, ...]

    @property
    def flags(self) -> int:
        """Missed inspections: the denominator minus the numerator of post_disbursement_inspection."""
        first = self.components[0]
        return first.denominator - first.numerator


def score(counts: Sequence[int], card: Scorecard) -> UnitScore:
    """The unit's points, component by component, each rounded half up before they are summed. `counts`: a
    unit's Counts, or their first SCORED fields (as `scorer` remembers them)."""
    components = []
    for component in card.components:
        numerator_at, denominator_at = _AT[component.key]
        numerator, denominator = counts[numerator_at], counts[denominator_at]
        points = component.points(numerator, denominator)
        components.append(ComponentScore(component.key, points, component.full, numerator, denominator))
    total = sum(c.points for c in components)
    return UnitScore(total, card.classify(total), tuple(components))


def scorer(card: Scorecard, size: int) -> Callable[[Counts], UnitScore]:
    """`score` with this card, remembering up to `size` scores by the scored counts (scoring takes ~50 µs)."""
    remembered = lru_cache(maxsize=size)(partial(score, card=card))

    def of(counts: Counts) -> UnitScore:
        return remembered(counts[:SCORED])

    return of


def window(today: date, card: Scorecard) -> tuple[date, date]:
    """Deadlines in (today − W, today) are assessed; the flags listed are the missed ones among them."""
    return today - card.windows.scoring, today


def scored_entry(unit: Unit, scored: UnitScore) -> dict[str, Any]:
    """A unit's report entry from a score already worked out (the API keeps scores; scoring is slow)."""
    counts = unit.counts
    return {
        "district_id": unit.district_id,
        "commune_id": unit.commune_id,
        "org": unit.org,
        "score": as_number(scored.score),
        "class": scored.rating,
        "components": {
            c.key: {
                "points": as_number(c.points),
                "max": as_number(c.max),
                "numerator": c.numerator,
                "denominator": c.denominator,
            }
            for c in scored.components
        },
        "duties": {
            "inactive_loan": {
                "pending": counts.inactive_pending,
                "missed": counts.inactive_missed,
                "done": counts.inactive_done,
            },
            "group_of_year": {
                "pending": counts.year_pending,
                "done": counts.year_done,
                "missed_last_year": counts.year_missed_last_year,
            },
        },
    }


class Flag(NamedTuple):
    """What the report lists of a missed loan (its fields are the entry's keys, in order)."""

    loan_id: str
    district_id: str
    commune_id: str
    org: str
    disbursed_on: date
    deadline: date
    late_inspection_on: date | None


def flag_entry(loan: Loan | Flag) -> dict[str, Any]:
    """A missed loan as the report lists it: the fields of `Flag`, dates as ISO text."""
    return {name: _iso(getattr(loan, name)) for name in Flag._fields}


class DutyRow(NamedTuple):
    """An inactive loan's open duty, as the store keeps it (`duty_entry` makes the report's entry)."""

    loan_id: str
    district_id: str
    commune_id: str
    org: str
    duty_status: DutyStatus
    duty_opened_on: date
    duty_late_on: date | None


def duty_entry(loan: Loan | DutyRow, windows: Windows) -> dict[str, Any]:
    """An open inactive-loan duty as the report lists it (docs/contract.md §7.3)."""
    opened = loan.duty_opened_on
    assert opened is not None, loan
    return {
        "loan_id": loan.loan_id,
        "district_id": loan.district_id,
        "commune_id": loan.commune_id,
        "org": loan.org,
        "inactive_since": (opened - windows.inactive).isoformat(),
        "opened_on": opened.isoformat(),
        "deadline": (opened + windows.inactive_inspection).isoformat(),
        "status": str(loan.duty_status),
        "late_inspection_on": _iso(loan.duty_late_on),
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def unit_order(unit: Unit) -> tuple[str, str, str]:
    return unit.district_id, unit.commune_id, unit.org


def build(
    today: date | None,
    units: Iterable[Unit],
    flags: Iterable[dict[str, Any]],
    duties: Iterable[dict[str, Any]],
    card: Scorecard,
    scorer: Callable[[Counts], UnitScore] | None = None,
) -> dict[str, Any]:
    """The report at `today`; `flags` are the entries (`flag_entry`'s shape, in report order) of the missed
    loans whose deadline lies in the window, `duties` those (`duty_entry`'s) of the open inactive-loan duties.

    `scorer` gives a unit's score from its counts (default: `score` with `card`; the API passes its memo).
    """
    scorer = scorer or partial(score, card=card)
    entries = [scored_entry(unit, scorer(unit.counts)) for unit in sorted(units, key=unit_order)]
    return assemble(today, entries, flags, duties, distribution(entries))


def assemble(
    today: date | None,
    units: list[dict[str, Any]] | orjson.Fragment,
    flags: Iterable[dict[str, Any]],
    duties: Iterable[dict[str, Any]],
    distribution: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """The report from its parts (`units`: the entries, or their JSON array)."""
    return {
        "as_of": None if today is None else today.isoformat(),
        "units": units,
        "flags": list(flags),
        "duties": list(duties),
        "distribution": distribution,
    }


class UnitEntries:
    """The report's unit entries as JSON, kept from one month end to the next: a month end scores and writes
    again only the units that changed since the one before (`changed`), so its cost follows what changed, not
    how many units there are. The distribution is kept the same way."""

    def __init__(self, scorer: Callable[[Counts], UnitScore]) -> None:
        self.scorer = scorer
        self.pending: dict[UnitKey, Unit] = {}  # changed since the entries were last written
        self.json: dict[UnitKey, bytes] = {}
        self.places: dict[UnitKey, tuple[str, str, str]] = {}  # each unit's `unit_order`
        self.order: list[UnitKey] = []  # the units in report order
        self.rated: dict[UnitKey, str] = {}  # each unit's class
        self.tally: dict[str, dict[str, int]] = {}  # units per class, by org

    def changed(self, units: Iterable[Unit]) -> None:
        for unit in units:
            self.pending[unit.commune_id, unit.org] = unit

    def parts(self) -> tuple[orjson.Fragment, dict[str, dict[str, int]]]:
        """The entries as one JSON array, and the distribution (as `distribution` gives it)."""
        placed = False
        for key, unit in self.pending.items():
            place = unit_order(unit)
            if self.places.get(key) != place:
                self.places[key], placed = place, True
            scored = self.scorer(unit.counts)
            self.json[key] = orjson.dumps(scored_entry(unit, scored))
            tally = self.tally.setdefault(unit.org, dict.fromkeys(CLASSES, 0))
            if key in self.rated:
                tally[self.rated[key]] -= 1
            tally[scored.rating] += 1
            self.rated[key] = scored.rating
        self.pending.clear()
        if placed:  # a new unit, or one whose district moved
            self.order = sorted(self.places, key=self.places.__getitem__)
        json = self.json
        units = orjson.Fragment(b"[" + b",".join([json[key] for key in self.order]) + b"]")
        return units, {org: dict(self.tally[org]) for org in ORGS if org in self.tally}


def distribution(entries: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Units per class for each org that has a unit among `entries` (dicts with "org" and "class")."""
    counts: dict[str, dict[str, int]] = {}
    for entry in entries:
        counts.setdefault(entry["org"], dict.fromkeys(CLASSES, 0))[entry["class"]] += 1
    return {org: counts[org] for org in ORGS if org in counts}


def render(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"

"""The API's answers, shaped from what `adapters.sql.queries` read: pure functions, no I/O, no HTTP.

Entries keep the report's own shapes (`report.scored_entry`, `report.flag_entry`), so a unit or a flag
reads the same in `GET /v1/report`, in a list and in a detail. Scores come kept (`caching.Scores`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import date, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any

from uythac.core import report
from uythac.core.areas import Selection
from uythac.core.explanations import still_to_inspect
from uythac.core.model import Loan, Unit
from uythac.core.report import UnitScore
from uythac.entrypoints.api.caching import Scores


def iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def later(today: date, days: int) -> date:
    """`today + days`, stopping at the calendar's last day rather than failing past it."""
    return today + timedelta(days=days) if date.max - today > timedelta(days=days) else date.max


def page(today: date | None, number: int, per_page: int, total: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"as_of": iso(today), "page": number, "per_page": per_page, "total": total, "items": items}


# units ----------------------------------------------------------------------------------------------
def unit_summary(unit: Unit, scored: UnitScore) -> dict[str, Any]:
    """The unit's report entry and how many 30-day inspections it missed in the window."""
    return {**report.scored_entry(unit, scored), "open_flags": scored.flags}


def unit_detail(
    unit: Unit, scores: Scores, today: date | None, flags: Iterable[Loan], due_soon: Iterable[Loan]
) -> dict[str, Any]:
    """A unit as its commune officer needs it: score, the points lost in words, what to fix, what is due."""
    scored = scores.of(unit.counts)
    return {
        **unit_summary(unit, scored),
        "as_of": iso(today),
        "explanations": scores.explained(scored),
        "to_inspect": None if today is None else asdict(still_to_inspect(unit.counts, today, scores.card.windows)),
        "flags": [report.flag_entry(loan) for loan in flags],
        "due_soon": [obligation_entry(loan, today) for loan in due_soon],
    }


# loans ----------------------------------------------------------------------------------------------
def obligation_entry(loan: Loan, today: date | None) -> dict[str, Any]:
    """A loan still waiting for its 30-day inspection: the worklist's line."""
    assert loan.deadline is not None and today is not None
    return {
        "loan_id": loan.loan_id,
        "district_id": loan.district_id,
        "commune_id": loan.commune_id,
        "org": loan.org,
        "disbursed_on": iso(loan.disbursed_on),
        "deadline": iso(loan.deadline),
        "status": loan.status,
        "days_left": (loan.deadline - today).days,
    }


def loan_status(loan: Loan, today: date | None) -> dict[str, Any]:
    """One loan's obligation at T. Only the bank's ids and dates: the store holds nothing on borrowers."""
    return {
        "as_of": iso(today),
        "loan_id": loan.loan_id,
        "district_id": loan.district_id,
        "commune_id": loan.commune_id,
        "org": loan.org,
        "group_id": loan.group_id,
        "disbursed_on": iso(loan.disbursed_on),
        "deadline": iso(loan.deadline),
        "status": loan.status,
        "inspected_on": iso(loan.inspected_on),
        "late_inspection_on": iso(loan.late_inspection_on),
        "misuse": loan.misuse,
    }


# reports and the province letter's table -----------------------------------------------------------
def restrict(full: Mapping[str, Any], selection: Selection) -> dict[str, Any]:
    """A stored report cut down to a selection: its units, flags and duties, and the distribution of those units."""
    entries = [entry for entry in full["units"] if selection.admits(entry)]
    return {
        "as_of": full["as_of"],
        "units": entries,
        "flags": [entry for entry in full["flags"] if selection.admits(entry)],
        "duties": [entry for entry in full["duties"] if selection.admits(entry)],
        "distribution": report.distribution(entries),
    }


def distribution_table(as_of: str | None, entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Units per class per district and org (the letter's table: "3/520 Tốt, 113 Khá, ..."), and the total.

    `entries` are dicts with district_id, org and class: report units, or lighter ones built from scores.
    """
    ordered = sorted(entries, key=itemgetter("district_id"))
    districts = [
        {"district_id": district, "distribution": report.distribution(rows)}
        for district, rows in groupby(ordered, key=itemgetter("district_id"))
    ]
    return {"as_of": as_of, "districts": districts, "distribution": report.distribution(ordered)}

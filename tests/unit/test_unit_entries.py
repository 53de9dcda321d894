"""A month end's unit entries, kept between month ends and written again only where units changed, equal the
entries built from scratch from every unit."""

from __future__ import annotations

from datetime import date

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.examples import CARD
from uythac.core import report
from uythac.core.model import Counts, Unit
from uythac.schemas.events import ORGS

DAY = date(2024, 3, 31)
KEYS = [(commune, org) for commune in ("C1", "C2", "C3") for org in ORGS]
# each component's numerator of 4 (or of 0): from every class to every other as the steps go
COUNTS = st.builds(
    lambda inspected, groups, overdue, inactive, deposits, pending, none: Counts(
        loans_inspected=inspected,
        loans_assessed=0 if none else 4,
        groups_inspected=groups,
        groups_seasoned=4,
        overdue=overdue * 1_000_000,
        outstanding=4_000_000,
        loans_inactive=inactive,
        loans_seasoned=4,
        groups_with_deposit=deposits,
        groups_saving_age=4,
        inactive_pending=pending,
    ),
    *[st.integers(0, 4)] * 6,
    st.booleans(),
)
# one step: a unit (new or known) gets new counts, and perhaps another district (an earlier event named it)
STEP = st.tuples(st.sampled_from(KEYS), COUNTS, st.sampled_from(["D1", "D2", None]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(STEP, max_size=6), min_size=1, max_size=6))
def test_kept_entries_equal_those_built_from_every_unit(
    month_ends: list[list[tuple[tuple[str, str], Counts, str | None]]],
) -> None:
    units: dict[tuple[str, str], Unit] = {}
    entries = report.UnitEntries(report.scorer(CARD, 64))
    for changes in month_ends:
        changed = []
        for key, counts, district in changes:
            unit = units.get(key)
            if unit is None:
                unit = units[key] = Unit(key[0], key[1], district or "D1", DAY, "e")
            elif district is not None:
                unit.district_id = district
            unit.counts = counts._replace(loans_inspected=0) if counts.loans_assessed == 0 else counts
            changed.append(unit)
        entries.changed(changed)
        kept, distribution = entries.parts()
        assembled = orjson.loads(orjson.dumps(report.assemble(DAY, kept, [], [], distribution)))
        assert assembled == report.build(DAY, units.values(), [], [], CARD)

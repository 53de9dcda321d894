"""A list's total is the length of the whole list, for every shape of selection and every filter.

Where a selection names no district, the totals of flags and of the worklist's missed loans, inactive loans and
groups are read from the units' counts (`queries._tally`), not by counting the loans: these tests hold the two
to each other, on a generated province plus a unit whose later loan and group name another district than the
unit's (a district's lists count their own loans).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product

import pytest

from tests.examples import CARD
from tests.support import group, inspect, loan, new_store, replay_into, tick
from uythac import bootstrap
from uythac.adapters.sql import queries
from uythac.adapters.sql.store import Store
from uythac.core.areas import Selection
from uythac.core.report import window
from uythac.core.worklist import WORK_STATUSES, DutyKind, WorkBounds
from uythac.devtools import generate

pytestmark = pytest.mark.usefixtures("store_kind")

MOVED = {"district_id": "D77", "commune_id": "C0001", "org": "HND"}  # the unit is D01's (generated)


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    events = [
        *generate.events(generate.GenerateOptions(communes=6, districts=2, months=14, seed=5)),
        group("GM1", "2023-05-02", **MOVED),
        loan("LM1", "2023-09-01", group_id="GM1", **MOVED),  # missed
        loan("LM2", "2024-01-05", group_id="GM1", **MOVED),
        inspect("LM2", "2024-01-20", **MOVED),  # fulfilled
        loan("LM3", "2024-01-25", group_id="GM1", **MOVED),  # still open
        tick("2024-02-02"),
    ]
    url = new_store(tmp_path_factory.mktemp("totals"))
    replay_into(url, events)
    store = bootstrap.open_store(url)
    yield store
    store.close()


def _selections(store: Store) -> list[Selection]:
    district, commune, org = "D01", "C0001", "HND"
    with queries.snapshot(store) as connection:
        unit = queries.unit(connection, commune, org)
    assert unit is not None and unit.district_id == district, "a unit of the generated province"
    return [
        Selection(),
        Selection(org=org),
        Selection(commune_id=commune),
        Selection(commune_id=commune, org=org),
        Selection(district_id=district),
        Selection(district_id="D77"),
        Selection(district_id=district, org=org),
        Selection(district_id="D77", commune_id=commune, org=org),
        Selection(commune_id="C9999"),
    ]


def test_flags_total_the_whole_list(province: Store) -> None:
    with queries.snapshot(province) as connection:
        today = queries.clock(connection)
        assert today is not None
        flags_window = window(today, CARD)
        for selection in _selections(province):
            whole = queries.flags(connection, flags_window, selection).rows
            for offset in (0, 3):
                page = queries.flags(connection, flags_window, selection, limit=2, offset=offset)
                assert page.total == len(whole), selection
                assert list(page.rows) == list(whole[offset : offset + 2]), selection
        moved = queries.flags(connection, flags_window, Selection(district_id="D77"))
        assert [flag.loan_id for flag in moved.rows] == ["LM1"]


@pytest.mark.parametrize("within_days", [0, 30])
def test_worklist_totals_the_whole_list(province: Store, within_days: int) -> None:
    duties = [None, *(kind.value for kind in DutyKind)]
    with queries.snapshot(province) as connection:
        today = queries.clock(connection)
        assert today is not None
        bounds = WorkBounds.at(today, CARD.windows, within_days)
        nonempty = set()
        for selection, duty, status in product(_selections(province), duties, [None, *WORK_STATUSES]):
            whole = queries.worklist(connection, bounds, selection, duty, status).rows
            page = queries.worklist(connection, bounds, selection, duty, status, limit=2, offset=1)
            assert page.total == len(whole), (selection, duty, status)
            assert list(page.rows) == list(whole[1:3]), (selection, duty, status)
            nonempty |= {(item.duty, item.status) for item in whole}
    assert {("new_loan", "missed"), ("inactive_loan", "missed"), ("group_of_year", "pending")} <= nonempty

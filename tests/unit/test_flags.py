"""The month-end reports' flag index: exactly the window's missed loans, in report order, as they stand."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from uythac.core.flags import FlagIndex
from uythac.core.model import Loan, Status
from uythac.core.report import Flag, flag_entry

AFTER, BEFORE = date(2023, 1, 1), date(2024, 1, 1)


def missed(loan_id: str, commune_id: str, deadline: date, late: date | None = None) -> Loan:
    return Loan(
        loan_id,
        district_id="D01",
        commune_id=commune_id,
        org="HND",
        disbursed_on=date.fromordinal(deadline.toordinal() - 30),
        deadline=deadline,
        status=Status.MISSED,
        late_inspection_on=late,
    )


def test_entries_come_in_report_order_and_inside_the_window_only() -> None:
    index = FlagIndex()
    loans = [
        missed("L2", "C0002", date(2023, 5, 1)),
        missed("L1", "C0002", date(2023, 6, 1)),
        missed("L9", "C0001", date(2023, 7, 1)),
        missed("L0", "C0001", date(2024, 1, 1)),  # on the window's edge: outside
    ]
    index.sync(loans, AFTER)
    assert [e["loan_id"] for e in index.entries(AFTER, BEFORE)] == ["L9", "L1", "L2"]
    assert index.entries(date(2023, 5, 1), BEFORE)[-1]["loan_id"] == "L1"  # the after edge is open too


def test_a_loan_no_longer_missed_or_out_of_the_window_leaves_and_a_change_shows() -> None:
    first, second = missed("L1", "C0001", date(2023, 3, 1)), missed("L2", "C0001", date(2023, 4, 1))
    stored = [Flag(*(getattr(loan, name) for name in Flag._fields)) for loan in (first, second)]
    index = FlagIndex(stored)  # as read from the store at start
    first.status = Status.FULFILLED  # an on-time inspection entered late
    second.late_inspection_on = date(2023, 5, 2)
    index.sync([first, second], AFTER)
    assert index.entries(AFTER, BEFORE) == [flag_entry(second)]
    index.sync([second], date(2023, 4, 1))  # its deadline has left the window
    assert index.entries(AFTER, BEFORE) == []


def test_a_loan_moved_to_another_commune_takes_its_new_place() -> None:
    loan = missed("L1", "C0003", date(2023, 3, 1))
    other = missed("L2", "C0002", date(2023, 3, 1))
    index = FlagIndex()
    index.sync([loan, other], AFTER)
    loan.commune_id = "C0001"  # an earlier disbursement named another commune
    index.sync([loan], AFTER)
    assert [e["loan_id"] for e in index.entries(AFTER, BEFORE)] == ["L1", "L2"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["L1", "L2", "L3", "L4", "L5"]),
            st.sampled_from(["C0001", "C0002", "C0003"]),
            st.sampled_from([Status.MISSED, Status.FULFILLED]),
            st.booleans(),  # ask for the report after this change
        ),
        max_size=40,
    )
)
def test_the_order_follows_every_change_whenever_a_report_asks(changes: list[tuple[str, str, Status, bool]]) -> None:
    """The index sorts when asked and keeps that order until an entry comes, goes or moves: after any sequence
    of changes, with reports asked for in between, the entries are the missed loans in report order."""
    index, state = FlagIndex(), dict[str, Loan]()
    for loan_id, commune_id, status, asked in changes:
        loan = missed(loan_id, commune_id, date(2023, 3, 1))
        loan.status = status
        state[loan_id] = loan
        index.sync([loan], AFTER)
        if asked:
            index.entries(AFTER, BEFORE)
    expected = sorted((x.commune_id, x.loan_id) for x in state.values() if x.status == Status.MISSED)
    assert [(e["commune_id"], e["loan_id"]) for e in index.entries(AFTER, BEFORE)] == expected

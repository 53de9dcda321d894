"""The entity cache: least recently used dropped past the limit, and what a batch left at rest dropped first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from uythac.core.model import Group, Loan
from uythac.service.cache import Kept


class Store:
    """Reads loans by id, remembering which ids it was asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def read(self, ids: Sequence[str]) -> dict[str, Loan]:
        self.asked += ids
        return {key: Loan(key, amount=100) for key in ids}


def test_past_the_limit_the_least_recently_used_are_dropped_and_read_again() -> None:
    store, kept = Store(), Kept(Loan, limit=2)
    kept.take(["a", "b", "c"], store.read, None)
    kept.take(["a"], store.read, None)  # a is now the most recently used
    for key in "abc":
        kept.rows[key] = (key,)
    kept.trim({})
    assert list(kept.entities) == ["c", "a"]
    assert sorted(kept.rows) == ["a", "c"]  # b's row as stored goes with it
    store.asked.clear()
    taken = kept.take(["b", "c"], store.read, None)
    assert store.asked == ["b"]
    assert list(taken) == ["b", "c"]


def test_a_loan_repaid_in_full_with_nothing_left_for_the_clock_is_dropped_under_the_limit() -> None:
    store, kept = Store(), Kept(Loan, limit=10)
    taken = kept.take(["repaid", "owing", "waiting"], store.read, None)
    for loan in taken.values():
        loan.disbursed_on = date(2024, 1, 5)
    taken["repaid"].principal_paid = 100
    taken["waiting"].principal_paid = 100
    taken["waiting"].next_change = date(2024, 3, 1)  # its missed flag still leaves the window later
    kept.rows["repaid"] = ("repaid",)
    kept.trim(taken)
    assert list(kept.entities) == ["owing", "waiting"]
    assert "repaid" not in kept.rows


def test_a_group_closed_with_nothing_left_for_the_clock_is_dropped() -> None:
    kept = Kept(Group, limit=10)
    taken = kept.take(["closed", "open"], lambda ids: {}, None)
    taken["closed"].closed_on = date(2024, 2, 1)
    kept.trim(taken)
    assert list(kept.entities) == ["open"]

"""The flags of the scoring window, kept in memory for the report at each month end the clock passes.

A month-end report lists the missed loans whose deadline lies in (T − W, T). A backfill passes a
month end every few batches, and reading those loans back from the store each time would be most of a report's
cost. The processor hands the index every loan a batch changed or brought due (`sync`): a loan's flag can
only change in a batch that has it, and a missed loan leaves the window on a day it is due anyway (its
`next_change`), so the index stays exact. It holds the window's flags only: the missed loans of a year,
not of the whole history.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from datetime import date
from typing import Any

from uythac.core.model import Loan, Status
from uythac.core.report import Flag, flag_entry

_Shown = tuple[Any, ...]  # what a flag entry shows of its loan (see `_shown`)
_Order = tuple[str, str, str]  # (commune_id, org, loan_id): the report's order of flags


class FlagIndex:
    """Missed loans while their deadline is in the window, and their places in the report's order."""

    def __init__(self, flags: Iterable[Flag] = ()) -> None:
        """`flags`: the missed loans whose deadline is in the window, as the store has them."""
        # loan_id → (what the entry shows, its place in report order, its deadline (ISO), the entry)
        self._flags: dict[str, tuple[_Shown | None, _Order, str, dict[str, Any]]] = {}
        self._order: list[_Order] = []  # sorted
        for flag in flags:
            self._put(None, flag_entry(flag))

    def sync(self, loans: Iterable[Loan], assessed_after: date) -> None:
        """Take in the state of these loans: a missed one with a deadline after `assessed_after` is a flag."""
        flags = self._flags
        for loan in loans:
            deadline = loan.deadline
            if loan.status == Status.MISSED and deadline is not None and deadline > assessed_after:
                shown = _shown(loan)
                kept = flags.get(loan.loan_id)
                if kept is None or kept[0] != shown:
                    self._put(shown, flag_entry(loan))
            elif loan.loan_id in flags:
                self._drop(loan.loan_id)

    def entries(self, after: date, before: date) -> list[dict[str, Any]]:
        """The report entries of the flags whose deadline lies in (after, before), in report order."""
        low, high = after.isoformat(), before.isoformat()  # ISO dates compare as the days they name
        flags = self._flags
        return [entry for _, _, deadline, entry in (flags[order[2]] for order in self._order) if low < deadline < high]

    def _put(self, shown: _Shown | None, entry: dict[str, Any]) -> None:
        loan_id = entry["loan_id"]
        order = (entry["commune_id"], entry["org"], loan_id)
        kept = self._flags.get(loan_id)
        if kept is None or kept[1] != order:
            if kept is not None:
                self._drop(loan_id)
            insort(self._order, order)
        self._flags[loan_id] = (shown, order, entry["deadline"], entry)

    def _drop(self, loan_id: str) -> None:
        _, order, _, _ = self._flags.pop(loan_id)
        del self._order[bisect_left(self._order, order)]


def _shown(loan: Loan) -> _Shown:
    return (loan.district_id, loan.commune_id, loan.org, loan.disbursed_on, loan.deadline, loan.late_inspection_on)

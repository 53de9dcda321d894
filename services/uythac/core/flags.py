"""The report's lists of loans (flags, open duties), kept in memory for the report at each month end the clock
passes.

A month-end report lists the missed loans whose deadline lies in (T − W, T). A backfill passes a
month end every few batches, and reading those loans back from the store each time would be most of a report's
cost. The processor hands the index every loan a batch changed or brought due (`sync`): a loan's flag can
only change in a batch that has it, and a missed loan leaves the window on a day it is due anyway (its
`next_change`), so the index stays exact. It holds the window's flags only: the missed loans of a year,
not of the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from functools import partial
from typing import Any

from uythac.core.model import OPEN_DUTY, Loan, Status
from uythac.core.report import DutyRow, Flag, duty_entry, flag_entry
from uythac.core.scorecard import Windows

_Shown = tuple[Any, ...]  # what an entry shows of its loan: the entry changes when this does
_Order = tuple[str, str, str]  # (commune_id, org, loan_id): the report's order of flags and duties


class _Ordered:
    """Report entries by loan, put in the report's order when a report asks for them.

    The order is made when asked (a sort) and kept until an entry moves, not kept sorted at each change: a loan
    enters and leaves the flags of a window once each, millions of times in a country's replay, while reports
    are asked for at month ends. A sorted list's insertion moves every later entry (~0.5 M flags at 10 000
    communes: ~100 µs each), a cost that grew with the country."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[_Shown | None, _Order, dict[str, Any]]] = {}
        self._order: list[_Order] | None = []  # sorted; None when an entry came, went or moved since

    def _put(self, shown: _Shown | None, entry: dict[str, Any]) -> None:
        loan_id = entry["loan_id"]
        order = (entry["commune_id"], entry["org"], loan_id)
        kept = self._entries.get(loan_id)
        if kept is None or kept[1] != order:
            self._order = None
        self._entries[loan_id] = (shown, order, entry)

    def _drop(self, loan_id: str) -> None:
        del self._entries[loan_id]
        self._order = None

    def _ordered(self) -> Iterator[dict[str, Any]]:
        entries = self._entries
        if self._order is None:
            self._order = sorted(kept[1] for kept in entries.values())
        return (entries[order[2]][2] for order in self._order)


class FlagIndex(_Ordered):
    """Missed loans while their deadline is in the window."""

    def __init__(self, flags: Iterable[Flag] = ()) -> None:
        """`flags`: the missed loans whose deadline is in the window, as the store has them."""
        super().__init__()
        for flag in flags:
            self._put(None, flag_entry(flag))

    def sync(self, loans: Iterable[Loan], assessed_after: date) -> None:
        """Take in the state of these loans: a missed one with a deadline after `assessed_after` is a flag.
        (Every loan a batch loaded passes here: the loop stays inline.)"""
        entries = self._entries
        for loan in loans:
            deadline = loan.deadline
            if loan.status == Status.MISSED and deadline is not None and deadline > assessed_after:
                shown = (
                    loan.district_id,
                    loan.commune_id,
                    loan.org,
                    loan.disbursed_on,
                    deadline,
                    loan.late_inspection_on,
                )
                kept = entries.get(loan.loan_id)
                if kept is None or kept[0] != shown:  # made again only if what it shows changed
                    self._put(shown, flag_entry(loan))
            elif loan.loan_id in entries:
                self._drop(loan.loan_id)

    def entries(self, after: date, before: date) -> list[dict[str, Any]]:
        """The report entries of the flags whose deadline lies in (after, before), in report order."""
        low, high = after.isoformat(), before.isoformat()  # ISO dates compare as the days they name
        return [entry for entry in self._ordered() if low < entry["deadline"] < high]


class DutyIndex(_Ordered):
    """Inactive loans whose duty is pending or missed (docs/contract.md §7.3): every one of them, not a window."""

    def __init__(self, windows: Windows, duties: Iterable[DutyRow] = ()) -> None:
        """`duties`: the open duties as the store has them."""
        super().__init__()
        self.entry = partial(duty_entry, windows=windows)
        for duty in duties:
            self._put(None, self.entry(duty))

    def sync(self, loans: Iterable[Loan]) -> None:
        """Take in the state of these loans: one whose duty is pending or missed is listed."""
        entries = self._entries
        for loan in loans:
            if loan.duty_status in OPEN_DUTY:
                shown = (
                    loan.district_id,
                    loan.commune_id,
                    loan.org,
                    loan.duty_status,
                    loan.duty_opened_on,
                    loan.duty_late_on,
                )
                kept = entries.get(loan.loan_id)
                if kept is None or kept[0] != shown:
                    self._put(shown, self.entry(loan))
            elif loan.loan_id in entries:
                self._drop(loan.loan_id)

    def entries(self) -> list[dict[str, Any]]:
        return list(self._ordered())

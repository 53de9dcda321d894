"""The flags of the scoring window, kept in memory for the report at each month end the clock passes.

A month-end report lists the missed loans whose deadline lies in (T − W, T) (SPEC §6). A backfill passes a
month end every few batches, and reading those loans back from the store each time was most of a report's
cost. The processor hands the index every loan a batch changed or brought due (`sync`): a loan's flag can
only change in a batch that has it, and a missed loan leaves the window on a day it is due anyway (its
`next_change`), so the index stays exact. It holds the window's flags only: the missed loans of a year,
not of the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from uythac.ledger import Loan
from uythac.report import flag_entry

_Shown = tuple[Any, ...]  # what a flag entry shows of its loan (see `_shown`)
_Order = tuple[str, str, str]  # (commune_id, org, loan_id): the report's order of flags


class FlagIndex:
    """Missed loans by id while their deadline is in the window: what the entry shows, its place in the
    report's order, its deadline (ISO) and the entry."""

    def __init__(self, entries: Iterable[dict[str, Any]] = ()) -> None:
        """`entries`: report entries of the missed loans whose deadline is in the window, from the store."""
        self._flags: dict[str, tuple[_Shown | None, _Order, str, dict[str, Any]]] = {
            e["loan_id"]: (None, (e["commune_id"], e["org"], e["loan_id"]), e["deadline"], e) for e in entries
        }

    def sync(self, loans: Iterable[Loan], assessed_after: date) -> None:
        """Take in the state of these loans: a missed one with a deadline after `assessed_after` is a flag."""
        flags = self._flags
        for loan in loans:
            deadline = loan.deadline
            if loan.status == "missed" and deadline is not None and deadline > assessed_after:
                shown = _shown(loan)
                kept = flags.get(loan.loan_id)
                if kept is None or kept[0] != shown:
                    entry = flag_entry(loan)
                    order = (entry["commune_id"], entry["org"], entry["loan_id"])
                    flags[loan.loan_id] = (shown, order, entry["deadline"], entry)
            elif loan.loan_id in flags:
                del flags[loan.loan_id]

    def entries(self, after: date, before: date) -> list[dict[str, Any]]:
        """The report entries of the flags whose deadline lies in (after, before), in report order."""
        low, high = after.isoformat(), before.isoformat()  # ISO dates compare as the days they name
        inside = sorted((order, entry) for _, order, deadline, entry in self._flags.values() if low < deadline < high)
        return [entry for _, entry in inside]


def _shown(loan: Loan) -> _Shown:
    return (loan.district_id, loan.commune_id, loan.org, loan.disbursed_on, loan.deadline, loan.late_inspection_on)

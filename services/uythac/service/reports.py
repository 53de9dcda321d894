"""Read models: what the report, the CLI and the demo ask of the store, answered in one read."""

from __future__ import annotations

from typing import Any

from uythac.core import report
from uythac.core.scorecard import Scorecard
from uythac.service.ports import Store


def current_report(store: Store, card: Scorecard) -> dict[str, Any]:
    """The report at the store's clock T."""
    with store.reading() as uow:
        today = uow.clock()
        units = uow.units().values()
        flags = [] if today is None else uow.missed_loans(*report.window(today, card))
        duties = [report.duty_entry(duty, card.windows) for duty in uow.open_duties()]
    return report.build(today, units, map(report.flag_entry, flags), duties, card)

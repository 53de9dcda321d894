"""Read models: what the report, the CLI and the demo ask of the store, answered in one read."""

from __future__ import annotations

from typing import Any

from uythac.core import report
from uythac.core.scorecard import Scorecard
from uythac.errors import StoreError
from uythac.service.ports import Store


def current_report(store: Store, card: Scorecard) -> dict[str, Any]:
    """The report at the store's clock T; refused under another scorecard than the store was built with (its
    windows are baked into every stored count, so the scores would be wrong without a word)."""
    with store.reading() as uow:
        built_with = uow.get_meta("scorecard")
        if built_with not in (None, card.digest):
            raise StoreError(
                f"the store was built with scorecard {built_with}, not {card.digest}: "
                "report with the same scorecard file, or replay the events into a new store with this one"
            )
        today = uow.clock()
        units = uow.units().values()
        flags = [] if today is None else uow.missed_loans(*report.window(today, card))
        duties = [report.duty_entry(duty, card.windows) for duty in uow.open_duties()]
    return report.build(today, units, map(report.flag_entry, flags), duties, card)

"""Read models: what the report, the CLI and the API ask of the store, answered in one read."""

from __future__ import annotations

from typing import Any

from uythac import report
from uythac.scorecard import Scorecard
from uythac.store import Store


def current_report(store: Store, card: Scorecard) -> dict[str, Any]:
    """The SPEC §6 report at the store's clock T."""
    with store.reading() as uow:
        today = uow.clock()
        units = uow.units().values()
        flags = [] if today is None else uow.flag_entries(*report.window(today, card))
    return report.build(today, units, flags, card)

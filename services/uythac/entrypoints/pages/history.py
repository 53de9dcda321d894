"""Every unit's score at each kept month end, read once per month end and kept: a kept report never changes (the
clock passes each month end once), and reading one decompresses and parses a province's report (~0.1-0.2 s)."""

from __future__ import annotations

import threading
from datetime import date

from sqlalchemy.engine import Connection

from uythac.adapters.sql import queries


class History:
    def __init__(self) -> None:
        self._scores: dict[date, dict[str, float]] = {}  # month end → "commune/org" → score
        self._lock = threading.Lock()

    def of(self, connection: Connection, commune_id: str, org: str) -> list[tuple[date, float]]:
        """The unit's score at each month end whose report is kept and lists it, oldest first."""
        kept = queries.snapshot_dates(connection)
        found = []
        for as_of in kept:
            score = self._month(connection, as_of).get(f"{commune_id}/{org}")
            if score is not None:
                found.append((as_of, score))
        with self._lock:  # month ends dropped as too old are forgotten here too
            for gone in set(self._scores) - set(kept):
                del self._scores[gone]
        return found

    def _month(self, connection: Connection, as_of: date) -> dict[str, float]:
        with self._lock:
            scores = self._scores.get(as_of)
        if scores is None:
            stored = queries.stored_report(connection, as_of)
            units = [] if stored is None else stored["units"]
            scores = {f"{u['commune_id']}/{u['org']}": u["score"] for u in units}
            with self._lock:
                self._scores[as_of] = scores
        return scores

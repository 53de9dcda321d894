"""What the API keeps between requests, all of it valid for one version of the store or forever.

The store counts its committed batches (`queries.version`): an answer made for one version holds until the
worker commits again, so a few hundred requests for the same report between two batches cost one build.
- `Bodies`: the bytes of answers, bounded by size. The whole report is ~2.5 MB of JSON for a province and
  takes ~0.25 s of one process's Python to build, while that process's other threads wait for the GIL.
- pages: a view's 200 answers kept in `Services.pages` by (store version, path and query, the caller's area)
  (`context.per_version`): counting a district's flags in the window costs more than the rest of a request.
- `Scores`: unit scores by counts (a pure function of them: scoring a unit takes ~0.2 ms of exact fraction
  arithmetic, and a province of 2 000 units is scored once per change of its counts), and the points each
  score lost in words, by score.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import asdict
from functools import lru_cache, partial
from typing import Any

from uythac.core import report
from uythac.core.explanations import explain_score
from uythac.core.model import Counts, Unit
from uythac.core.report import UnitScore
from uythac.core.scorecard import Scorecard, Windows


class Bodies:
    """The latest bodies by key, `budget` bytes of them at most (a key starts with the store version it was
    made at). Bounded by bytes, not by count: bodies run from 100 B (an empty page) to 2.5 MB (the report),
    and the pages a province's callers ask for outnumbered a count that bounded the largest well."""

    def __init__(self, budget: int) -> None:
        self.budget, self.size = budget, 0
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """The body kept for `key`, or `make()`'s (two threads may both make it: the same bytes)."""
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
                return body
        body = make()
        with self._lock:
            replaced = self._bodies.pop(key, None)
            self._bodies[key] = body
            self.size += len(body) - (0 if replaced is None else len(replaced))
            while self.size > self.budget:
                self.size -= len(self._bodies.popitem(last=False)[1])
        return body


class Scores:
    """Unit scores at the scorecard in force, remembered by counts; and the points each score lost in words,
    remembered by score (writing a unit's takes ~0.15 ms, half of its detail)."""

    def __init__(self, card: Scorecard, size: int = 1 << 16, worded: int = 1 << 12) -> None:
        self.card = card
        self.of: Callable[[Counts], UnitScore] = report.scorer(card, size)
        self.explained: Callable[[UnitScore], tuple[dict[str, Any], ...]] = lru_cache(maxsize=worded)(
            partial(_explanations, windows=card.windows)
        )

    def warm(self, units: Iterable[Unit]) -> None:
        for unit in units:
            self.of(unit.counts)


def _explanations(scored: UnitScore, windows: Windows) -> tuple[dict[str, Any], ...]:
    return tuple(asdict(explanation) for explanation in explain_score(scored, windows))

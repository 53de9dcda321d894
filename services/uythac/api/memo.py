"""Bodies of the costliest answers, kept per version of the store.

The whole report is ~2.5 MB of JSON for a province and takes ~0.25 s of one process's Python to build:
while it builds, that process's other threads wait for the GIL and every request they hold waits too.
The store counts its committed batches (`queries.version`), so an answer made for one version holds
until the worker commits again; a few hundred requests for the same report between two batches cost
one build.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable


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

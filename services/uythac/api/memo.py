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
    """The latest `size` bodies by key (a key starts with the store version it was made at)."""

    def __init__(self, size: int) -> None:
        self.size = size
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
            self._bodies[key] = body
            while len(self._bodies) > self.size:
                self._bodies.popitem(last=False)
        return body

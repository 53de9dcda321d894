"""When Python's cycle collector runs in a replay, a worker or its intake: after so much work, not so many
allocations.

Applying an event allocates a dozen container objects (decoded JSON, the event, rows, shares), nearly all
freed by reference counting when their batch ends, while the processor keeps loans and groups by the hundred
thousand. Left to its allocation counts, the collector would run every few thousand events and walk the batch
in flight each time, a tenth of a replay's time or more. Run between batches instead, when the batch's
garbage is gone, a full collection walks only what is kept (~0.4 s for a province held in memory), every
`every_events` events (or `every_s` seconds, for a worker that gets few). Cycles are rare here (some in
SQLAlchemy and kafka-python: a few hundred objects per million events), so they wait that long to be freed
for a few hundred kB at most.

A full collection's cost grows with what is kept (~0.5 s a million cached loans), so in a wide province it
would take a growing share of the time: collections that take more than `SHARE` of the time come further
apart, up to `MAX_SPACING` times the interval asked for.
"""

from __future__ import annotations

import gc
import logging
import time
from types import TracebackType

log = logging.getLogger(__name__)

EVERY_EVENTS = 1_000_000
EVERY_S = 600.0
SHARE = 0.02  # the most of the time full collections should take
MAX_SPACING = 20.0


class Collections:
    """While entered, the automatic collector is off and `done(n)` runs a full collection when it is due."""

    def __init__(self, component: str, every_events: int = EVERY_EVENTS, every_s: float = EVERY_S) -> None:
        """`component`: what the log line says collected (replay, worker, intake)."""
        self.component, self.every_events, self.every_s = component, every_events, every_s
        self.pending = 0
        self.last = 0.0  # when the latest collection ended (or the block was entered)
        self.spacing = 1.0  # the intervals asked for, times this: more when a collection took more than SHARE
        self.was_enabled = True

    def __enter__(self) -> Collections:
        self.was_enabled = gc.isenabled()
        gc.disable()
        self.last = time.monotonic()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.was_enabled:
            gc.enable()

    def done(self, events: int) -> None:
        """`events` more were handled and their batch let go: collect if enough work or time has passed."""
        self.pending += events
        worked = time.monotonic() - self.last
        if self.pending >= self.every_events * self.spacing or worked >= self.every_s * self.spacing:
            started = time.perf_counter()
            freed = gc.collect()
            seconds = time.perf_counter() - started
            # the spacing at which this collection would have taken SHARE of the time since the last one
            self.spacing = min(MAX_SPACING, max(1.0, self.spacing * seconds / (SHARE * max(worked, 1e-6))))
            log.info(
                "cycles collected",
                extra={
                    "component": self.component,
                    "freed": freed,
                    "events": self.pending,
                    "seconds": round(seconds, 3),
                    "spacing": round(self.spacing, 1),
                },
            )
            self.pending, self.last = 0, time.monotonic()

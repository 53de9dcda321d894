"""When Python's cycle collector runs in a replay, a worker or its intake: after so much work, not so many
allocations.

Applying an event allocates a dozen container objects (decoded JSON, the event, rows, shares), nearly all
freed by reference counting when their batch ends, while the processor keeps loans and groups by the hundred
thousand. Left to its allocation counts, the collector ran every few thousand events and walked the batch in
flight each time: 7 % of a replay's time at the default thresholds, and still ~10 % (4–7 s of a 1.2 M-event
replay, measured with `gc.callbacks`) at thresholds 70 times higher. Run between batches instead, when the
batch's garbage is gone, a full collection walks only what is kept: ~0.4 s for a province, every
`every_events` events (or `every_s` seconds, for a worker that gets few), 1.3 s in all for the same replay.
Cycles (rare: some in SQLAlchemy and kafka-python) wait at most that long to be freed: a collection after
400 000 events freed 140–1 001 objects in the worker and 0–701 in its intake (2026-12-04), so collecting
after every 1 000 000 instead costs a few hundred kB at most and saves two collections (~0.7 s) a province.
"""

from __future__ import annotations

import gc
import logging
import time
from types import TracebackType

log = logging.getLogger(__name__)

EVERY_EVENTS = 1_000_000
EVERY_S = 600.0


class Collections:
    """While entered, the automatic collector is off and `done(n)` runs a full collection when it is due."""

    def __init__(self, component: str, every_events: int = EVERY_EVENTS, every_s: float = EVERY_S) -> None:
        """`component`: what the log line says collected (replay, worker, intake)."""
        self.component, self.every_events, self.every_s = component, every_events, every_s
        self.pending = 0
        self.last = 0.0  # set on entering
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
        if self.pending >= self.every_events or time.monotonic() - self.last >= self.every_s:
            started = time.perf_counter()
            freed = gc.collect()
            seconds = time.perf_counter() - started
            log.info(
                "cycles collected",
                extra={
                    "component": self.component,
                    "freed": freed,
                    "events": self.pending,
                    "seconds": round(seconds, 3),
                },
            )
            self.pending, self.last = 0, time.monotonic()

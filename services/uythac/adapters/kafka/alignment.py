"""The intake hands its partitions' records to the worker in business-date order, as Kafka Streams picks the
record with the smallest timestamp of a task's partitions.

Why: the clock T is the latest business date of all events. A worker catching up on a backlog reads its
partitions at the pace the broker's fetches allow, and a partition of thinly active communes covers months
more per fetch than a busy one. Handed over as fetched, a batch would take T a year ahead of the communes
still to come: their loans would look inactive and their new loans uninspected, and duties and flags would
open, then close as those communes' events arrive (in one measured catch-up, five output messages for every
one a replay of the same events sends). Held back to the slowest partition, they open once, as in a replay.

The rule: a record is handed over once no partition can still bring an older one. A partition bounds the
others by the date of its first held record; with nothing held, by the latest date it has handed over if it
is `behind` (records wait in Kafka, or it has not been fetched since its assignment); a partition that is
caught up bounds nothing, so a live stream flows at once. Each partition's records keep their offset order:
its records are handed over from the front, while they are dated on or before the bound; a rejected record
(no date) goes with whatever precedes it. Pure: the intake says which partitions are behind.

The broker serves each partition the same bytes a fetch, so a partition of thinly active communes runs
months ahead of a busy one; the intake pauses a partition that holds many records (`ahead`: kafka-python
keeps what it fetched for it) so the fetches go to the partitions behind. Past `hold_limit` records held, or
for a partition behind that brings nothing for `patience_s` (seconds of polls that brought nothing), the
others stop waiting for the partitions not fetched, and the records held still go in date order among
themselves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

from uythac.core.events import Rejection

NOTHING_YET = -1  # a partition behind that has handed nothing over: it bounds the others below every date


class Entry(NamedTuple):
    """One record as the worker needs it, checked: `day` 0 and a `rejection` if refused."""

    day: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int
    event_id: str
    digest: bytes
    rejection: Rejection | None


class Alignment:
    def __init__(self, patience_s: float, hold_limit: int) -> None:
        self.patience_s = patience_s  # a partition behind that brings nothing this long stops bounding the others
        self.hold_limit = hold_limit  # records held; beyond, only the partitions holding records bound
        self.held: dict[int, deque[Entry]] = {}
        self.handed: dict[int, int] = {}  # partition → the latest date it has handed over
        self.waiting: dict[int, float] = {}  # partition behind → since when (monotonic) it has brought nothing

    def add(self, partition: int, entries: Iterable[Entry]) -> None:
        self.held.setdefault(partition, deque()).extend(entries)
        self.waiting.pop(partition, None)

    def clear(self) -> None:
        self.held.clear()
        self.handed.clear()
        self.waiting.clear()

    def holding(self) -> int:
        return sum(map(len, self.held.values()))

    def ahead(self, at_least: int) -> set[int]:
        """The partitions holding `at_least` records: ahead of the others, their fetches can wait."""
        return {partition for partition, entries in self.held.items() if len(entries) >= at_least}

    def bound(self, behind: set[int]) -> int | None:
        """The latest date that can be handed over: no partition can still bring an older record (None: no
        record is held)."""
        bounds = [self.handed.get(p, NOTHING_YET) for p in behind if not self.held.get(p)]
        for entries in self.held.values():
            first = next((entry.day for entry in entries if entry.rejection is None), None)
            if first is not None:
                bounds.append(first)
        if not bounds:  # only rejected records are held, if any: they go at once
            return NOTHING_YET if self.holding() else None
        return min(bounds)

    def release(self, behind: set[int], limit: int, now: float) -> list[tuple[int, list[Entry]]]:
        """Up to `limit` records that can be handed over now, by partition, in offset order: as a merge of the
        partitions by date would hand them over, until the partition that bounds them has nothing left to give.
        `behind` are the partitions with records still in Kafka (or their end unknown); `now` is the clock
        `patience_s` runs on (the intake's: seconds of polls that brought nothing)."""
        behind = self._patient(behind, now)
        released: dict[int, list[Entry]] = {}
        count = 0
        while count < limit and (bound := self.bound(behind)) is not None:
            more = self._release_to(bound, limit - count)
            if not more:
                break
            for partition, out in more:
                released.setdefault(partition, []).extend(out)
                count += len(out)
        return list(released.items())

    def _patient(self, behind: set[int], now: float) -> set[int]:
        """The partitions behind still worth waiting for: none once `hold_limit` records are held; otherwise
        those that brought something within `patience_s` of the caller's clock (kafka-python sometimes stops
        fetching a partition: the worker's stall watch is there for that, and the other partitions go on)."""
        for partition in set(self.waiting) - behind:
            del self.waiting[partition]
        if self.holding() >= self.hold_limit:
            return set()
        return {p for p in behind if now - self.waiting.setdefault(p, now) < self.patience_s}

    def _release_to(self, bound: int, limit: int) -> list[tuple[int, list[Entry]]]:
        released = []
        for partition, entries in self.held.items():
            out = []
            while entries and limit > 0 and (entries[0].rejection is not None or entries[0].day <= bound):
                out.append(entries.popleft())
                limit -= 1
            if out:
                days = [entry.day for entry in out if entry.rejection is None]
                if days:
                    self.handed[partition] = max(self.handed.get(partition, NOTHING_YET), max(days))
                released.append((partition, out))
        return released

"""What the worker and its intake say to each other over their two pipes (`intake`), as typed messages.

intake → worker:  Assigned      partitions sought to the store's offsets (read them as the store has them)
                  Revoked       partitions taken away
                  Batch         polled records, checked, tagged with the generation they were read in (the
                                polls made while the worker was busy, gathered up to the batch size)
                  Ends          about once a second, the assigned partitions' end offsets ({}: no answer)
                  Relayed       a relay round has its answers
                  Restarted     (made by the worker's handle, not sent) a new intake replaced one that ended
worker → intake:  Rewind        seek every partition back to the store's offsets; later batches carry the new
                                generation, earlier ones are dropped
                  CommitOffsets advisory, for lag tools (the store's offsets are the truth)
                  Relay         send up to `limit` committed outbox rows, oldest first (one round at a time)
                  Stop          after the round in flight has its answers

They are pickled through `multiprocessing` pipes: `Polled` keeps a poll's records in lists side by side
and its numbers in arrays (one block of bytes each rather than an object per record).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass, field

from uythac.core.events import Rejection


def _numbers() -> array[int]:
    return array("q")


@dataclass
class Polled:
    """Polled records as the worker needs them, in lists side by side (cheap to pickle: the numbers in
    arrays, one block of bytes each rather than an object per record). A record the intake accepted has its
    event id, business date and digest; a rejected one, the reason (and event id, if it had a readable one).
    The records of a partition are side by side, in offset order: `runs` says where."""

    generation: int
    runs: list[tuple[int, int, int]] = field(default_factory=list)  # (partition, start, stop) in the lists
    offsets: array[int] = field(default_factory=_numbers)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    headers: list[tuple[tuple[str, bytes], ...]] = field(default_factory=list)  # () if none (most records)
    timestamps: array[int] = field(default_factory=_numbers)
    days: array[int] = field(default_factory=_numbers)  # business dates as day numbers (`core.dates`); 0 if rejected
    ids: list[str] = field(default_factory=list)  # event ids, "" for a rejected record (claimed while decoding)
    digests: list[bytes] = field(default_factory=list)  # b"" for a rejected record
    rejections: dict[int, Rejection] = field(default_factory=dict)  # by position in the lists

    def __len__(self) -> int:
        return len(self.offsets)

    def extend(self, other: Polled) -> None:
        """Append a later poll's records (the same generation): one batch for the worker instead of two."""
        shift = len(self.offsets)
        self.runs.extend((partition, start + shift, stop + shift) for partition, start, stop in other.runs)
        self.offsets.extend(other.offsets)
        self.keys.extend(other.keys)
        self.values.extend(other.values)
        self.headers.extend(other.headers)
        self.timestamps.extend(other.timestamps)
        self.days.extend(other.days)
        self.ids.extend(other.ids)
        self.digests.extend(other.digests)
        self.rejections.update((i + shift, rejection) for i, rejection in other.rejections.items())

    def partitions(self) -> set[int]:
        return {partition for partition, _, _ in self.runs}

    def index(self, partition: int, offset: int) -> int:
        """Where a record is in the lists."""
        for run_partition, start, stop in self.runs:
            if run_partition == partition:
                i = bisect_left(self.offsets, offset, start, stop)
                if i < stop and self.offsets[i] == offset:
                    return i
        raise KeyError((partition, offset))


@dataclass(frozen=True, slots=True)
class Assigned:
    """These partitions are the intake's now, sought to the store's offsets."""

    partitions: list[int]


@dataclass(frozen=True, slots=True)
class Revoked:
    """These partitions are no longer the intake's."""

    partitions: list[int]


@dataclass(frozen=True, slots=True)
class Batch:
    """Polled records, checked; its generation says which rewind it was read after (the worker drops a batch
    of an older generation: its records are read again)."""

    polled: Polled


@dataclass(frozen=True, slots=True)
class Ends:
    """The end offset of each assigned partition, by partition: from the intake's fetches while they bring
    records, else asked of the broker ({} if it did not answer in time)."""

    ends: dict[int, int]


@dataclass(frozen=True, slots=True)
class Relayed:
    """A relay round's answers: the outbox rows the broker acknowledged, how many failed, the first error."""

    acknowledged: list[int]
    failed: int = 0
    error: str | None = None
    elsewhere: bool = False  # nothing sent: another worker's intake relays the store's outbox (`Store.holds_relay`)


@dataclass(frozen=True, slots=True)
class Restarted:
    """The intake ended and a new one was started: its partitions and relay round went with it."""


@dataclass(frozen=True, slots=True)
class Rewind:
    """Seek every assigned partition back to the store's offsets (a batch could not be applied as read); the
    batches read from now on carry this generation."""

    generation: int


@dataclass(frozen=True, slots=True)
class CommitOffsets:
    """Commit these next offsets to Kafka, by partition (advisory)."""

    positions: dict[int, int]


@dataclass(frozen=True, slots=True)
class Relay:
    """Send up to `limit` committed outbox rows, oldest first, and answer with `Relayed`."""

    limit: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Leave the group and end, once the round in flight has its answers."""


FromIntake = Assigned | Revoked | Batch | Ends | Relayed | Restarted
ToIntake = Rewind | CommitOffsets | Relay | Stop

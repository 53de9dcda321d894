"""The intake's pipe to the worker: while the worker is busy, polls join the last batch waiting, up to the batch
size, in order, and never across a notice or a rewind."""

from __future__ import annotations

import threading
from multiprocessing import Pipe
from multiprocessing.connection import Connection

from uythac.adapters.kafka.alignment import Entry
from uythac.adapters.kafka.intake import _Out, _polled
from uythac.adapters.kafka.protocol import Assigned, Batch, Ends, FromIntake, Polled
from uythac.core.events import Rejection

BATCH_SIZE = 10
LARGE = b"x" * 200_000  # more than a pipe holds: its writer waits until the worker reads


def poll(partition: int, offsets: range, generation: int = 1, value: bytes = b"{}") -> Batch:
    """A poll's records: offset 3 of any poll is a rejected one."""
    entries = [
        Entry(
            offset,
            offset,
            b"k",
            value,
            (),
            offset,
            "" if offset == 3 else f"e{partition}.{offset}",
            b"" if offset == 3 else b"d",
            Rejection("x") if offset == 3 else None,
        )
        for offset in offsets
    ]
    return Batch(_polled([(partition, entries)], generation))


def records(polled: Polled) -> list[tuple[int, int, int, str, str | None]]:
    """Each record as (partition, offset, day, event id, rejection), found through `runs` and `index`."""
    found = []
    for partition, start, stop in polled.runs:
        for i in range(start, stop):
            assert polled.index(partition, polled.offsets[i]) == i
            rejection = polled.rejections.get(i)
            reason = rejection.reason if rejection is not None else None
            found.append((partition, polled.offsets[i], polled.days[i], polled.ids[i], reason))
    return found


def through_the_pipe(*messages: FromIntake) -> list[FromIntake]:
    """`messages` sent while the worker is busy with the first (large) batch, then everything it reads."""
    reading, writing = Pipe(duplex=False)
    out = _Out(writing, BATCH_SIZE)
    sender = threading.Thread(target=out.send, args=(poll(0, range(100, 110), value=LARGE), *messages))
    sender.start()
    sender.join(timeout=0.5)  # it has queued all it could: the worker is busy with the first batch
    received = [reading.recv()]
    sender.join(timeout=10)
    out.close()
    writing.close()
    return received + drain(reading)


def drain(reading: Connection) -> list[FromIntake]:
    taken = []
    while reading.poll(1):
        try:
            taken.append(reading.recv())
        except EOFError:
            break
    return taken


def test_polls_join_the_last_batch_waiting_up_to_the_batch_size() -> None:
    polls = [poll(0, range(0, 3)), poll(1, range(0, 3)), poll(0, range(3, 6)), poll(1, range(3, 6))]
    sent = [record for batch in polls for record in records(batch.polled)]
    received = through_the_pipe(*polls)
    batches = [message.polled for message in received[1:] if isinstance(message, Batch)]
    assert [len(batch) for batch in batches] == [9, 3]
    assert [record for batch in batches for record in records(batch)] == sent
    assert batches[0].rejections == {6: batches[0].rejections[6]} and batches[1].rejections == {0: Rejection("x")}
    assert batches[0].partitions() == {0, 1}


def test_a_notice_or_a_rewind_starts_a_new_batch_and_ends_let_records_pass() -> None:
    received = through_the_pipe(
        poll(0, range(0, 2)), Ends({0: 9}), poll(0, range(2, 4)), Assigned([1]), poll(1, range(0, 2))
    )
    assert [type(message).__name__ for message in received[1:]] == ["Batch", "Ends", "Assigned", "Batch"]
    first = received[1]
    assert isinstance(first, Batch) and [offset for _, offset, *_ in records(first.polled)] == [0, 1, 2, 3]

    received = through_the_pipe(poll(0, range(0, 2), generation=1), poll(0, range(0, 2), generation=2))
    assert [message.polled.generation for message in received[1:] if isinstance(message, Batch)] == [1, 2]

"""`uythac status`: where the worker's store stands against the events topic (and `--wait` for it).

For an operator (is the worker keeping up? is the outbox draining?) and for scripts such as `make run`
that must wait until a published province has been applied before they show it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

from kafka import KafkaConsumer, TopicPartition

from uythac.adapters.sql.store import Store


@dataclass(frozen=True)
class Status:
    clock: date | None  # the store's T
    applied: int  # messages of the events topic the store has applied
    published: int  # messages on the events topic (end offsets)
    outbox: int  # output messages not yet acknowledged by Kafka
    heartbeat_age_s: float | None  # since a worker last wrote its heartbeat

    @property
    def caught_up(self) -> bool:
        return self.applied >= self.published and self.outbox == 0

    def line(self) -> str:
        heartbeat = "never" if self.heartbeat_age_s is None else f"{self.heartbeat_age_s:.0f} s ago"
        return (
            f"clock {self.clock or '-'}: applied {self.applied} of {self.published} messages "
            f"({self.published - self.applied} behind), outbox {self.outbox}, worker heartbeat {heartbeat}"
        )


def end_offsets(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="uythac-status", enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return sum(consumer.end_offsets(partitions).values()) if partitions else 0
    finally:
        consumer.close()


def status(store: Store, bootstrap: str, topic: str) -> Status:
    with store.reading() as uow:
        clock, applied, outbox = uow.clock(), sum(uow.offsets(topic).values()), uow.outbox_backlog()
        beats = uow.heartbeats()
    age = max(time.time() - max(at for at, _ in beats.values()), 0.0) if beats else None
    return Status(clock, applied, end_offsets(bootstrap, topic), outbox, age)


def wait(store: Store, bootstrap: str, topic: str, timeout_s: float, print_every_s: float = 10.0) -> Status:
    """Poll until the store has applied everything published and sent everything it owes; print progress."""
    deadline = time.monotonic() + timeout_s
    printed = 0.0
    while True:
        now = status(store, bootstrap, topic)
        done = now.caught_up or time.monotonic() > deadline
        if done or time.monotonic() - printed >= print_every_s:
            print(now.line(), flush=True)
            printed = time.monotonic()
        if done:
            return now
        time.sleep(1.0)

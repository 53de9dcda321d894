"""The outbox relay: output messages committed with the state that caused them, sent to Kafka after commit.

A message is a row of the `outbox` table until the broker has acknowledged it; then the worker deletes the
row (`service.checkpoint`, steps 5 and 6). When the worker asks for a round, its intake, which owns the
producer, reads the committed rows (`pending_rows`), makes them messages again and sends them (`Round`: it
tells which rows the broker acknowledged, without holding up the intake's polls). A worker that dies
between the acknowledgement and the delete sends the rows again after restart, with the same bytes (and so
the same event_id): a consumer that dedupes by event_id sees each once. Nothing is lost, because nothing
leaves the table unacknowledged. (Separate from the other producers: a round is never waited for, its
answers are collected between the intake's polls.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer

from uythac.adapters.kafka.protocol import Relayed
from uythac.core.outputs import Message, StoredOutboxRow
from uythac.service.ports import Store


def pending_rows(store: Store, limit: int) -> list[StoredOutboxRow]:
    """The oldest committed rows not yet acknowledged, as plain tuples (id, topic, key, value, headers)."""
    with store.reading() as uow:
        return uow.pending_outbox(limit)


class Round:
    """Messages handed to the producer; `result()` once each is acknowledged or has failed."""

    def __init__(self, producer: KafkaProducer, rows: Sequence[StoredOutboxRow]) -> None:
        self._sent = [(row[0], _send(producer, Message.of_row(*row[1:]))) for row in rows]

    def result(self) -> Relayed | None:
        """The round's answers once every message has one, else None."""
        if not all(future.is_done for _, future in self._sent):
            return None
        failed = [future.exception for _, future in self._sent if future.failed()]
        ok = [n for n, future in self._sent if future.succeeded()]
        return Relayed(ok, len(failed), str(failed[0]) if failed else None)


def _send(producer: KafkaProducer, message: Message) -> Any:
    return producer.send(message.topic, key=message.key, value=message.value, headers=list(message.headers))

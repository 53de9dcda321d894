"""The transactional outbox: messages written with the state that caused them, sent to Kafka after commit.

A message is a row of the `outbox` table until the broker has acknowledged it; then the row is deleted.
When the worker asks for a round, its intake, which owns the producer, reads the committed rows (`pending`),
makes them messages again and sends them (`Round`: it tells which rows the broker acknowledged, without
holding up the intake's polls); the worker then deletes those rows (`acknowledged`). A worker that
dies between the acknowledgement and the delete sends the rows again after restart, with the same bytes (and
so the same event_id): a consumer that dedupes by event_id sees each once. Nothing is lost, because nothing
leaves the table unacknowledged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer

from uythac.store import OutboxRow, Store, StoredOutboxRow

NO_HEADERS = json.dumps([])


@dataclass(frozen=True)
class Message:
    """One Kafka message, exactly as it will be sent (headers keep their original bytes)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    def row(self) -> OutboxRow:
        """As the `outbox` table keeps it (`store.OUTBOX_FIELDS`; headers: a JSON list of [name, base64 value]
        pairs)."""
        headers = [[name, base64.b64encode(value).decode()] for name, value in self.headers]
        return (self.topic, self.key, self.value, json.dumps(headers))

    @classmethod
    def of_row(cls, topic: str, key: bytes | None, value: bytes, headers: str) -> Message:
        if headers == NO_HEADERS:  # every output event; only dead letters carry headers
            return cls(topic, key, value)
        return cls(topic, key, value, tuple((name, base64.b64decode(text)) for name, text in json.loads(headers)))


def pending(store: Store, limit: int) -> list[StoredOutboxRow]:
    """The oldest committed rows not yet acknowledged, as plain tuples."""
    with store.reading() as uow:
        return uow.pending_outbox(limit)


def acknowledged(store: Store, ids: Sequence[int]) -> None:
    """The broker has these: their rows go."""
    if ids:
        with store.unit_of_work() as uow:
            uow.remove_outbox(ids)


class Round:
    """Messages handed to the producer; `result()` once each is acknowledged or has failed."""

    def __init__(self, producer: KafkaProducer, rows: Sequence[StoredOutboxRow]) -> None:
        self._sent = [(row[0], _send(producer, Message.of_row(*row[1:]))) for row in rows]

    def result(self) -> tuple[list[int], int, str | None] | None:
        """(ids acknowledged, how many failed, the first failure) once every message has an answer, else None."""
        if not all(future.is_done for _, future in self._sent):
            return None
        failed = [future.exception for _, future in self._sent if future.failed()]
        ok = [n for n, future in self._sent if future.succeeded()]
        return ok, len(failed), (str(failed[0]) if failed else None)


def _send(producer: KafkaProducer, message: Message) -> Any:
    return producer.send(message.topic, key=message.key, value=message.value, headers=list(message.headers))

"""The transactional outbox: messages written with the state that caused them, sent to Kafka after commit.

A message is a row of the `outbox` table until the broker has acknowledged it; then the row is deleted.
A relay that dies between the acknowledgement and the delete sends the row again after restart, with
the same bytes (and so the same event_id): a consumer that dedupes by event_id sees it once. Nothing is
lost, because nothing leaves the table unacknowledged.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from uythac import metrics
from uythac.store import Store

log = logging.getLogger(__name__)
NO_HEADERS = json.dumps([])


@dataclass(frozen=True)
class Message:
    """One Kafka message, exactly as it will be sent (headers keep their original bytes)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    def row(self) -> dict[str, Any]:
        headers = [[name, base64.b64encode(value).decode()] for name, value in self.headers]
        return {"topic": self.topic, "key": self.key, "value": self.value, "headers": json.dumps(headers)}

    @classmethod
    def of_row(cls, row: Any) -> Message:
        if row.headers == NO_HEADERS:  # every output event; only dead letters carry headers
            return cls(row.topic, row.key, row.value)
        headers = tuple((name, base64.b64decode(value)) for name, value in json.loads(row.headers))
        return cls(row.topic, row.key, row.value, headers)


def relay(store: Store, producer: KafkaProducer, limit: int = 2000) -> int:
    """Send the committed outbox rows, oldest first; returns how many the broker acknowledged.

    Stops at the first failure (broker down, timeout) and leaves the rest for the next call.
    """
    sent = 0
    while True:
        with store.unit_of_work() as uow:
            rows = uow.pending_outbox(limit)
            if not rows:
                return sent
            futures = []
            for row in rows:
                message = Message.of_row(row)
                futures.append(
                    producer.send(message.topic, key=message.key, value=message.value, headers=list(message.headers))
                )
            try:
                producer.flush(timeout=30)
                for future in futures:
                    future.get(timeout=0)
            except KafkaError as error:
                metrics.OUTBOX_FAILURES.inc()
                log.warning("outbox relay failed; will retry", extra={"rows": len(rows), "error": str(error)})
                return sent
            uow.remove_outbox([row.id for row in rows])
            metrics.OUTBOX_SENT.inc(len(rows))
            sent += len(rows)

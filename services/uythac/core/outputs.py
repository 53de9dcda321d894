"""Output messages for other services, built from a batch's outcome (pure: no I/O).

`uythac.flags`: a 30-day inspection flag raised or cleared, misuse found, an inactive loan's duty of
inspection opened, missed or done. `uythac.scores`: a unit's score or class changed. Both keyed by
commune_id. Each message has its own `event_id`, made from the store's epoch and a sequence kept in the
store, fixed when the outbox row is written: a relay that sends a row twice sends the same id, so a
consumer that dedupes by event_id sees each message once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from uythac.core.model import Counts, Loan
from uythac.core.outcome import Outcome
from uythac.core.report import UnitScore, scored_entry
from uythac.core.scorecard import as_number

OutboxRow = tuple[str, bytes | None, bytes, str]  # (topic, key, value, headers): a message as the outbox keeps it
StoredOutboxRow = tuple[int, str, bytes | None, bytes, str]  # (id, topic, key, value, headers): as the outbox has it
NO_HEADERS = json.dumps([])


@dataclass(frozen=True)
class Message:
    """One Kafka message, exactly as it will be sent (headers keep their original bytes)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    def row(self) -> OutboxRow:
        """As the outbox keeps it (headers: a JSON list of [name, base64 value] pairs)."""
        headers = [[name, base64.b64encode(value).decode()] for name, value in self.headers]
        return (self.topic, self.key, self.value, json.dumps(headers))

    @classmethod
    def of_row(cls, topic: str, key: bytes | None, value: bytes, headers: str) -> Message:
        if headers == NO_HEADERS:  # every output event; only dead letters carry headers
            return cls(topic, key, value)
        return cls(topic, key, value, tuple((name, base64.b64decode(text)) for name, text in json.loads(headers)))


@dataclass(frozen=True)
class Topics:
    """Where output goes (settings `UYTHAC_KAFKA_FLAGS_TOPIC`, `UYTHAC_KAFKA_SCORES_TOPIC`)."""

    flags: str
    scores: str


def messages(
    outcome: Outcome, scorer: Callable[[Counts], UnitScore], ids: Iterator[str], topics: Topics
) -> list[Message]:
    """The flags, duties and score changes of one batch, in the order they happened; one id from `ids` each.
    `scorer`: a unit's score from its counts (the processor's, which remembers them)."""
    out = []
    for transition in outcome.transitions:
        entity = transition.entity
        subject_field = "loan_id" if isinstance(entity, Loan) else "group_id"
        payload: dict[str, Any] = {
            "event_id": next(ids),
            "type": transition.change,
            "occurred_at": transition.day.isoformat(),
            subject_field: transition.subject,
            "district_id": entity.district_id,
            "commune_id": entity.commune_id,
            "org": entity.org,
            "cause": transition.cause,
        }
        if transition.detail:
            payload.update(transition.detail)
        elif isinstance(entity, Loan) and entity.disbursed_on is not None and entity.deadline is not None:
            payload["disbursed_on"] = entity.disbursed_on.isoformat()
            payload["deadline"] = entity.deadline.isoformat()
        key = entity.commune_id.encode() if entity.commune_id else None
        out.append(Message(topics.flags, key, orjson.dumps(payload)))
    for unit, before in outcome.changed_units:
        now, was = scorer(unit.counts), scorer(before)
        is_new = (unit.commune_id, unit.org) in outcome.new_units
        if not is_new and (now.score, now.rating) == (was.score, was.rating):
            continue
        entry = scored_entry(unit, now)
        payload = {
            "event_id": next(ids),
            "type": "score.changed",
            "as_of": outcome.today.isoformat() if outcome.today else None,
            **{k: entry[k] for k in ("district_id", "commune_id", "org", "score", "class")},
            "previous": None if is_new else {"score": as_number(was.score), "class": was.rating},
            "components": entry["components"],
        }
        out.append(Message(topics.scores, unit.commune_id.encode(), orjson.dumps(payload)))
    return out

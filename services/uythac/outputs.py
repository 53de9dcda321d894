"""Output events for other services, built from a batch's outcome (pure: no I/O).

`uythac.flags`: a 30-day inspection flag raised or cleared, misuse found. `uythac.scores`: a unit's
score or class changed. Both keyed by commune_id. Each message has its own `event_id`, made from the
store's epoch and a sequence kept in the store, fixed when the outbox row is written: a relay that
sends a row twice sends the same id, so a consumer that dedupes by event_id sees each message once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from uythac.ledger import Counts, Loan
from uythac.outbox import Message
from uythac.processor import Outcome
from uythac.report import UnitScore, scored_entry
from uythac.scorecard import as_number


@dataclass(frozen=True)
class Topics:
    """Where output goes (settings `UYTHAC_KAFKA_FLAGS_TOPIC`, `UYTHAC_KAFKA_SCORES_TOPIC`)."""

    flags: str = "uythac.flags"
    scores: str = "uythac.scores"


def messages(
    outcome: Outcome, scorer: Callable[[Counts], UnitScore], ids: Iterator[str], topics: Topics
) -> list[Message]:
    """The flags and score changes of one batch, in the order they happened; one id from `ids` each.
    `scorer`: a unit's score from its counts (the processor's, which remembers them)."""
    out = []
    for transition in outcome.transitions:
        entity = transition.entity
        subject_field = "loan_id" if isinstance(entity, Loan) else "group_id"
        payload: dict[str, Any] = {
            "event_id": next(ids),
            "type": transition.kind,
            "occurred_at": transition.day.isoformat(),
            subject_field: transition.subject,
            "district_id": entity.district_id,
            "commune_id": entity.commune_id,
            "org": entity.org,
            "cause": transition.cause,
        }
        if isinstance(entity, Loan) and entity.disbursed_on is not None and entity.deadline is not None:
            payload["disbursed_on"] = entity.disbursed_on.isoformat()
            payload["deadline"] = entity.deadline.isoformat()
        key = entity.commune_id.encode() if entity.commune_id else None
        out.append(Message(topics.flags, key, orjson.dumps(payload)))
    for unit, before in outcome.changed_units:
        now, was = scorer(unit.counts), scorer(before)
        is_new = (unit.commune_id, unit.org) in outcome.new_units
        if not is_new and (now.score, now.klass) == (was.score, was.klass):
            continue
        entry = scored_entry(unit, now)
        payload = {
            "event_id": next(ids),
            "type": "score.changed",
            "as_of": outcome.today.isoformat() if outcome.today else None,
            **{k: entry[k] for k in ("district_id", "commune_id", "org", "score", "class")},
            "previous": None if is_new else {"score": as_number(was.score), "class": was.klass},
            "components": entry["components"],
        }
        out.append(Message(topics.scores, unit.commune_id.encode(), orjson.dumps(payload)))
    return out

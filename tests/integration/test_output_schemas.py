"""The published schemas of the output messages hold every message the worker makes: a processor runs through
a history that makes each type (flags raised and cleared, misuse of a loan and of a group, an inactive loan's
duty opened, missed and done, new and changed scores), and each message is validated against its schema."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import fastjsonschema
import pytest

from tests.support import CARD, follow_up, group, inspect, loan, new_store, periodic, tick
from uythac.adapters.sql.store import Store
from uythac.core.events import Event, parse
from uythac.core.outputs import Topics, messages
from uythac.schemas.outputs import output_schemas
from uythac.service.processor import Processor

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "json"
d = date(2023, 3, 1)
DEADLINE = d + timedelta(days=30)
OPENED = d + timedelta(days=90)
DUTY_DEADLINE = OPENED + timedelta(days=30)
HISTORY = [
    [group("G1", d - timedelta(days=200)), loan("L1", d), loan("L2", d), loan("L3", d)],
    [inspect("L2", d + timedelta(days=3), result="misuse"), periodic("G1", d + timedelta(days=5), result="misuse")],
    [tick(DEADLINE + timedelta(days=5))],  # L1 and L3 flagged
    [inspect("L1", DEADLINE)],  # on time, entered late: L1's flag cleared
    [tick(OPENED)],  # L1, L2, L3 inactive: duties opened
    [tick(DUTY_DEADLINE + timedelta(days=1))],  # missed
    [follow_up("L3", DUTY_DEADLINE)],  # on its deadline, entered late: done
]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.at(new_store(tmp_path))
    yield opened
    opened.close()


def _events(items: list[dict[str, object]]) -> list[tuple[int, Event]]:
    parsed = [parse(json.dumps(item)) for item in items]
    return [(n, event) for n, event in enumerate(parsed) if isinstance(event, Event)]


def test_every_message_a_history_makes_fits_its_published_schema(store: Store) -> None:
    processor = Processor(store, CARD, 24, 250_000)
    ids = (f"uythac:0123456789ab:{n}" for n in range(1, 10_000))
    checks = {
        name: fastjsonschema.compile(json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")))
        for name in output_schemas()
    }
    made: Counter[str] = Counter()
    for batch in HISTORY:
        outcome = processor.process(_events(batch))
        for message in messages(outcome, processor.score, ids, Topics("flags", "scores")):
            body = json.loads(message.value)
            checks[body["type"]](body)
            made[body["type"]] += 1
    assert set(made) == set(output_schemas()), made  # every type made at least once
    assert made["misuse.found"] == 2  # a loan's and a group's

"""Several writers on one store (the workers of one consumer group): each batch commits with its partitions'
offsets, fenced if another writer moved them, and starts from the state every writer committed before it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.examples import CARD
from tests.integration.test_properties import provinces
from tests.reference import reference_report
from tests.support import new_store, report_at
from uythac.adapters.sql.store import Store
from uythac.core.events import Event, parse
from uythac.errors import StoreError
from uythac.service.processor import Processor
from uythac.service.reports import current_report

pytestmark = pytest.mark.usefixtures("store_kind")  # each test on SQLite, then PostgreSQL


def test_a_partitions_first_offset_row_is_fenced_like_the_others(tmp_path: Path) -> None:
    store = Store.at(new_store(tmp_path))
    try:
        with store.unit_of_work() as uow:
            uow.advance_offsets("events", {3: (None, 10)})
        with pytest.raises(StoreError, match="another worker"), store.unit_of_work() as uow:
            uow.advance_offsets("events", {4: (None, 5), 3: (None, 7)})  # a second worker that read none either
        with pytest.raises(StoreError, match="another worker"), store.unit_of_work() as uow:
            uow.advance_offsets("events", {3: (7, 12)})
        with store.reading() as uow:
            assert uow.offsets("events") == {3: 10}  # the fenced batches left nothing, their new partition neither
    finally:
        store.close()


@settings(max_examples=25)
@given(events=provinces(), seed=st.integers(0, 2**16), writers=st.integers(2, 3))
def test_writers_taking_turns_on_one_store_end_with_the_reference_report(
    tmp_path: Path, events: list[dict[str, Any]], seed: int, writers: int
) -> None:
    """Each writer keeps its state in memory between its batches, as a worker does, while the others commit."""
    rng = random.Random(seed)
    parsed = [(n, parse(orjson.dumps(event))) for n, event in enumerate(events)]
    batches: list[list[tuple[int, Event]]] = []
    order = [(n, event) for n, event in parsed if isinstance(event, Event)]
    rng.shuffle(order)
    while order:
        step = rng.randint(1, 6)
        batches.append(order[:step])
        order = order[step:]
    location = new_store(tmp_path, "shared")
    stores = [Store.at(location) for _ in range(writers)]
    try:
        processors = [Processor(store, CARD, 24, 250_000) for store in stores]
        for batch in batches:
            rng.choice(processors).process(batch)
        assert current_report(stores[0], CARD) == reference_report(events)
    finally:
        for store in stores:
            store.close()
    assert report_at(location) == reference_report(events)

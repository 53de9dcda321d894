"""The store's record of accepted event ids (`SqlUnitOfWork.claim`): each id is kept with the digest it was first
claimed with, and a later claim of it gets that digest back, whatever characters the id holds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import CARD, new_store
from uythac.adapters.sql.schema import seen
from uythac.adapters.sql.store import Store
from uythac.adapters.sql.unit_of_work import SqlUnitOfWork
from uythac.core.events import DIGEST_SIZE, Event, parse
from uythac.service.processor import Processor

# Quotes, backslashes, every plane; not lone surrogates or NUL, which neither JSON text nor SQLite's carry (the
# schema's ID_PATTERN allows neither: the NUL is refused, below).
IDS = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=64)
DIGESTS = st.binary(min_size=DIGEST_SIZE, max_size=DIGEST_SIZE)
BATCHES = st.lists(st.dictionaries(IDS, DIGESTS, max_size=30), max_size=6)
pytestmark = pytest.mark.usefixtures("store_kind")  # each test on SQLite, then PostgreSQL


@contextmanager
def _store() -> Iterator[Store]:
    with TemporaryDirectory() as directory:
        store = Store.at(new_store(Path(directory), "seen"))
        try:
            yield store
        finally:
            store.close()


def _stored(uow: SqlUnitOfWork) -> dict[str, bytes]:
    return {row.event_id: bytes(row.digest) for row in uow.connection.execute(sa.select(seen))}


@settings(max_examples=60, deadline=None)
@given(batches=BATCHES)
def test_a_claim_returns_the_digests_claimed_first_and_keeps_the_new_ids(batches: list[dict[str, bytes]]) -> None:
    model: dict[str, bytes] = {}
    with _store() as store:
        for batch in batches:
            with store.unit_of_work() as uow:
                known = uow.claim(batch)
                assert known == {event_id: model[event_id] for event_id in batch if event_id in model}
                model = {**batch, **model}
                assert _stored(uow) == model


def test_claim_takes_the_whole_batch_in_one_transaction(tmp_path: Path) -> None:
    store = Store.at(new_store(tmp_path, "seen"))
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.claim({"e-1": bytes(DIGEST_SIZE)})
        raise RuntimeError("the batch failed after its claim")
    with store.unit_of_work() as uow:
        assert uow.claim({"e-1": b"\x01" * DIGEST_SIZE, "e-2": bytes(DIGEST_SIZE)}) == {}
        assert uow.claim({"e-1": bytes(DIGEST_SIZE)}) == {"e-1": b"\x01" * DIGEST_SIZE}
    store.close()


def test_a_digest_of_another_size_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    store = Store.at(new_store(tmp_path, "seen"))
    with store.unit_of_work() as uow:
        with pytest.raises(ValueError, match="digest"):
            uow.claim({"e-1": bytes(DIGEST_SIZE), "e-2": bytes(DIGEST_SIZE - 1)})
        assert _stored(uow) == {}
    store.close()


def test_an_id_holding_a_nul_is_refused_rather_than_cut_short(tmp_path: Path) -> None:
    store = Store.at(new_store(tmp_path, "seen"))
    with store.unit_of_work() as uow:
        with pytest.raises(ValueError, match="event_id"):
            uow.claim({"e-1": bytes(DIGEST_SIZE), "e\x002": bytes(DIGEST_SIZE)})
        assert _stored(uow) == {}
    store.close()


def _event(event_id: str, loan: str, day: str, principal: int) -> tuple[int, Event]:
    line = {
        "event_id": event_id,
        "type": "repayment.recorded",
        "occurred_at": day,
        "district_id": "D01",
        "commune_id": "C0001",
        "org": "HND",
        "loan_id": loan,
        "principal": principal,
        "interest": 1000,
    }
    event = parse(orjson.dumps(line))
    assert isinstance(event, Event)
    return hash(event_id), event


def test_a_batch_handed_over_later_with_its_first_digests_is_deduped_as_the_batch_itself(tmp_path: Path) -> None:
    """The worker claims a batch's ids while it decodes the batch (`Processor.apply(..., first_digests=...)`)."""
    first = [_event("r-1", "L-1", "2023-01-05", 100), _event("r-2", "L-1", "2023-01-06", 200)]
    second = [
        _event("r-2", "L-1", "2023-01-06", 200),  # a duplicate of the batch before
        _event("r-2", "L-1", "2023-01-06", 999),  # a conflict with it
        _event("r-3", "L-2", "2023-01-07", 300),
        _event("r-3", "L-2", "2023-01-07", 300),  # a duplicate within the batch
        _event("r-4", "L-2", "2023-01-08", 400),
        _event("r-4", "L-2", "2023-01-08", 401),  # a conflict within it
    ]
    outcomes = []
    for way in ("itself", "later"):
        processor = Processor(Store.at(new_store(tmp_path, way)), CARD, 24, 250_000)
        processor.process(first)
        if way == "itself":
            outcomes.append(processor.process(second))
        else:
            firsts: dict[str, bytes] = {}
            for _, event in second:
                firsts.setdefault(event.event_id, event.digest)
            with processor.transaction() as uow:
                outcomes.append(processor.apply(uow, lambda: second, first_digests=firsts))
        processor.store.close()
    itself, later = outcomes
    assert [event.event_id for event in later.accepted] == [event.event_id for event in itself.accepted]
    assert [event.event_id for event in itself.accepted] == ["r-3", "r-4"]
    assert later.duplicates == itself.duplicates == 2
    assert [ref for ref, _ in later.rejected] == [ref for ref, _ in itself.rejected] == [second[1][0], second[5][0]]

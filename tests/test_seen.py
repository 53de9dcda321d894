"""The store's record of accepted event ids (`UnitOfWork.claim`): each id is kept with the digest it was first
claimed with, and a later claim of it gets that digest back, whatever characters the id holds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from uythac.store import DIGEST_SIZE, Store, UnitOfWork, seen

IDS = st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=64)  # quotes, backslashes, any plane
DIGESTS = st.binary(min_size=DIGEST_SIZE, max_size=DIGEST_SIZE)
BATCHES = st.lists(st.dictionaries(IDS, DIGESTS, max_size=30), max_size=6)
WAYS = ("_claim_at_once", "_claim_one_by_one")  # SQLite's, and the one other databases take


@contextmanager
def _store() -> Iterator[Store]:
    with TemporaryDirectory() as directory:
        store = Store.at(Path(directory) / "seen.db")
        try:
            yield store
        finally:
            store.close()


def _stored(uow: UnitOfWork) -> dict[str, bytes]:
    return {row.event_id: bytes(row.digest) for row in uow.connection.execute(sa.select(seen))}


@pytest.mark.parametrize("way", WAYS)
@settings(max_examples=60, deadline=None)
@given(batches=BATCHES)
def test_a_claim_returns_the_digests_claimed_first_and_keeps_the_new_ids(
    way: str, batches: list[dict[str, bytes]]
) -> None:
    model: dict[str, bytes] = {}
    with _store() as store:
        for batch in batches:
            with store.unit_of_work() as uow:
                known = getattr(uow, way)(batch)
                assert known == {event_id: model[event_id] for event_id in batch if event_id in model}
                model = {**batch, **model}
                assert _stored(uow) == model


def test_claim_takes_the_whole_batch_in_one_transaction(tmp_path: Path) -> None:
    store = Store.at(tmp_path / "seen.db")
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.claim({"e-1": bytes(DIGEST_SIZE)})
        raise RuntimeError("the batch failed after its claim")
    with store.unit_of_work() as uow:
        assert uow.claim({"e-1": b"\x01" * DIGEST_SIZE, "e-2": bytes(DIGEST_SIZE)}) == {}
        assert uow.claim({"e-1": bytes(DIGEST_SIZE)}) == {"e-1": b"\x01" * DIGEST_SIZE}
    store.close()


def test_a_digest_of_another_size_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    store = Store.at(tmp_path / "seen.db")
    with store.unit_of_work() as uow:
        with pytest.raises(ValueError, match="digest"):
            uow.claim({"e-1": bytes(DIGEST_SIZE), "e-2": bytes(DIGEST_SIZE - 1)})
        assert _stored(uow) == {}
    store.close()


def test_an_id_holding_a_nul_is_refused_rather_than_cut_short(tmp_path: Path) -> None:
    store = Store.at(tmp_path / "seen.db")
    with store.unit_of_work() as uow:
        with pytest.raises(ValueError, match="event_id"):
            uow.claim({"e-1": bytes(DIGEST_SIZE), "e\x002": bytes(DIGEST_SIZE)})
        assert _stored(uow) == {}
    store.close()

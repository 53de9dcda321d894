"""Many rows written at once (PostgreSQL: one statement of arrays, written by orjson where it can) read back as
they were: bytes of every value, text with quotes, backslashes, control characters and Vietnamese, nulls."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import new_store
from uythac.adapters.sql.store import Store

pytestmark = pytest.mark.usefixtures("store_kind")

TEXTS = ["plain", 'a "quoted" word', "back\\slash\\", '\\"', "tab\there", "line\nbreak", "Hòa Bình", "{a,b}", "NULL"]


@pytest.mark.parametrize("texts", [TEXTS[:4] + TEXTS[6:], TEXTS], ids=["escapes an array reads", "control characters"])
def test_outbox_rows_read_back_as_written(tmp_path: Path, texts: list[str]) -> None:
    rows = [
        ("uythac.flags", None if i % 3 == 0 else bytes([i % 256, 0, 92, 34, 255]), bytes(range(256)) * (i + 1), text)
        for i, text in enumerate(texts * 3)
    ]
    store = Store.at(new_store(tmp_path))
    try:
        with store.unit_of_work() as uow:
            uow.add_outbox(rows)
        with store.reading() as uow:
            stored = uow.pending_outbox(1000)
        assert [tuple(row[1:]) for row in stored] == rows
    finally:
        store.close()

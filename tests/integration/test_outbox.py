"""The outbox table: rows come back as they went in, oldest first, a round at a time, until acknowledged."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support import new_store
from uythac.adapters.kafka.relay import pending_rows
from uythac.adapters.sql.store import Limits, Store
from uythac.core.outputs import Message

pytestmark = pytest.mark.usefixtures("store_kind")  # on SQLite, then PostgreSQL


def acknowledged(store: Store, ids: Sequence[int]) -> None:
    with store.unit_of_work() as uow:
        uow.remove_outbox(ids)


def test_rows_come_back_oldest_first_a_round_at_a_time_until_acknowledged(tmp_path: Path) -> None:
    store = Store.at(new_store(tmp_path, "o"))
    sent = [Message("uythac.scores", f"C{i:04d}".encode(), b'{"n":%d}' % i) for i in range(7)]
    sent[3] = Message("uythac.events.dlq", None, b"\xff\x00", (("uythac.reason", b"message: not JSON"), ("x", b"")))
    with store.unit_of_work() as uow:
        uow.add_outbox([message.row() for message in sent[:5]])
    with store.unit_of_work() as uow:
        uow.add_outbox([message.row() for message in sent[5:]])

    first = pending_rows(store, 4)
    assert [Message.of_row(*row[1:]) for row in first] == sent[:4]  # headers, null key, binary values intact
    acknowledged(store, [row[0] for row in first])
    rest = pending_rows(store, 4)
    assert [Message.of_row(*row[1:]) for row in rest] == sent[4:]
    assert pending_rows(store, 4) == rest  # not acknowledged: sent again
    acknowledged(store, [row[0] for row in rest])
    assert pending_rows(store, 4) == []
    store.close()


def test_one_process_relays_a_store_at_a_time_and_a_silent_one_is_replaced(tmp_path: Path, store_kind: str) -> None:
    """PostgreSQL: the relay lock is one session's, and a session silent past `idle_in_transaction_s` (a frozen
    intake) is ended by the next process that asks. SQLite: one worker, which always relays."""
    location = new_store(tmp_path, "relay")
    first, second = (Store.at(location, Limits(idle_in_transaction_s=1)) for _ in range(2))
    try:
        assert first.holds_relay()
        assert second.holds_relay() == (store_kind == "sqlite")
        assert first.holds_relay()  # asking again keeps it
        time.sleep(2.5)  # the first says nothing meanwhile
        assert second.holds_relay()
        assert first.holds_relay() == (store_kind == "sqlite")
    finally:
        first.close()
        second.close()

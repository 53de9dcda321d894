"""The outbox table: rows come back as they went in, oldest first, a round at a time, until acknowledged."""

from __future__ import annotations

from pathlib import Path

from uythac import outbox
from uythac.outbox import Message
from uythac.store import Store


def test_rows_come_back_oldest_first_a_round_at_a_time_until_acknowledged(tmp_path: Path) -> None:
    store = Store.at(str(tmp_path / "o.db"))
    sent = [Message("uythac.scores", f"C{i:04d}".encode(), b'{"n":%d}' % i) for i in range(7)]
    sent[3] = Message("uythac.events.dlq", None, b"\xff\x00", (("uythac.reason", b"message: not JSON"), ("x", b"")))
    with store.unit_of_work() as uow:
        uow.add_outbox([message.row() for message in sent[:5]])
    with store.unit_of_work() as uow:
        uow.add_outbox([message.row() for message in sent[5:]])

    first = outbox.pending(store, 4)
    assert [Message.of_row(*row[1:]) for row in first] == sent[:4]  # headers, null key, binary values intact
    outbox.acknowledged(store, [row[0] for row in first])
    rest = outbox.pending(store, 4)
    assert [Message.of_row(*row[1:]) for row in rest] == sent[4:]
    assert outbox.pending(store, 4) == rest  # not acknowledged: sent again
    outbox.acknowledged(store, [row[0] for row in rest])
    assert outbox.pending(store, 4) == []
    store.close()

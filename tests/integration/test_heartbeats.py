"""Each worker writes its own heartbeat and lag to the store, under its name: the API's /readyz and `uythac status`
read all of them; a name silent for a day (a worker without a fixed name had a new one at each start) is dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import new_store
from uythac.adapters.sql.store import Store

pytestmark = pytest.mark.usefixtures("store_kind")


def test_each_worker_beats_under_its_name_and_names_silent_for_a_day_go(tmp_path: Path) -> None:
    store = Store.at(new_store(tmp_path))
    try:
        now = 1_800_000_000.0
        with store.unit_of_work() as uow:
            uow.beat("host-a-101", 7, now - 2 * 86_400)  # a worker that ran two days ago
        with store.unit_of_work() as uow:
            assert uow.heartbeats() == {"host-a-101": (now - 2 * 86_400, 7)}
            uow.beat("worker-1", 3, now - 5)
            uow.beat("worker-2", 40, now)
            uow.beat("worker-1", 4, now - 1)
        with store.reading() as uow:
            assert uow.heartbeats() == {"worker-1": (now - 1, 4), "worker-2": (now, 40)}
    finally:
        store.close()

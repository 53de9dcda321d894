"""Helpers shared by the tests: build events tersely, replay them, read the report."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.examples import CARD
from uythac import bootstrap
from uythac.adapters.sql import queries
from uythac.entrypoints.replay import Summary, replay
from uythac.service.processor import Processor
from uythac.service.reports import current_report
from uythac.settings import Settings

if TYPE_CHECKING:
    from tests.postgres_server import PostgresServer

_ids = itertools.count(1)


class Stores:
    """Where `new_store` makes stores: SQLite files, unless the `store_kind` fixture (tests/conftest.py) has set
    the session's PostgreSQL for a test parametrized over both stores."""

    postgres: PostgresServer | None = None


def new_store(tmp_path: Path, name: str = "store") -> str:
    """An empty store for a test: a SQLite file under `tmp_path`, or a new schema on the session's PostgreSQL."""
    if Stores.postgres is not None:
        return Stores.postgres.new_store()
    return str(tmp_path / f"{name}-{next(_ids)}.db")


MONTHS_KEPT = Settings().reports_months


def ev(event_type: str, on: str | date, /, event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid event of `event_type` dated `on`; unit D01/C0001/HND unless fields say otherwise."""
    data: dict[str, Any] = {
        "event_id": event_id or f"e{next(_ids)}",
        "type": event_type,
        "occurred_at": on.isoformat() if isinstance(on, date) else on,
    }
    if event_type != "clock.tick":
        data.update({"district_id": "D01", "commune_id": "C0001", "org": "HND"})
    data.update(fields)
    return data


def group(group_id: str, on: str | date, **fields: Any) -> dict[str, Any]:
    return ev("group.registered", on, group_id=group_id, **fields)


def loan(loan_id: str, on: str | date, amount: int = 10_000_000, group_id: str = "G1", **fields: Any) -> dict[str, Any]:
    return ev("loan.disbursed", on, loan_id=loan_id, group_id=group_id, amount=amount, **fields)


def inspect(loan_id: str, on: str | date, **fields: Any) -> dict[str, Any]:
    return ev("inspection.recorded", on, kind="post_disbursement", loan_id=loan_id, **fields)


def follow_up(loan_id: str, on: str | date, **fields: Any) -> dict[str, Any]:
    """An inspection of one loan other than its 30-day one (of an inactive loan, say)."""
    return ev("inspection.recorded", on, kind="follow_up", loan_id=loan_id, **fields)


def periodic(group_id: str, on: str | date, **fields: Any) -> dict[str, Any]:
    return ev("inspection.recorded", on, kind="periodic", group_id=group_id, **fields)


def repay(loan_id: str, on: str | date, principal: int = 0, interest: int = 1000, **fields: Any) -> dict[str, Any]:
    return ev("repayment.recorded", on, loan_id=loan_id, principal=principal, interest=interest, **fields)


def overdue(loan_id: str, on: str | date, amount: int, **fields: Any) -> dict[str, Any]:
    return ev("loan.overdue_changed", on, loan_id=loan_id, overdue_principal=amount, **fields)


def deposit(group_id: str, on: str | date, amount: int = 50_000, **fields: Any) -> dict[str, Any]:
    return ev("savings.deposited", on, group_id=group_id, amount=amount, **fields)


def tick(on: str | date) -> dict[str, Any]:
    return ev("clock.tick", on)


def write_lines(path: Path, events: Iterable[dict[str, Any] | str]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for item in events:
            out.write((item if isinstance(item, str) else json.dumps(item)) + "\n")
    return path


def replay_into(
    db: Path | str,
    events: Iterable[dict[str, Any] | str],
    as_of: date | None = None,
    batch_size: int = 5000,
    cache_limit: int = 250_000,
) -> Summary:
    """Replay events (dicts or raw lines) onto the store at `db`, keeping what is already there; the
    processor keeps at most `cache_limit` loans (and groups) in memory between batches."""
    handle, name = tempfile.mkstemp(prefix="uythac-events-", suffix=".jsonl")
    os.close(handle)
    source = write_lines(Path(name), events)
    store = bootstrap.open_store(str(db))
    try:
        processor = Processor(store, CARD, MONTHS_KEPT, cache_limit)
        return replay(source, processor, as_of=as_of, batch_size=batch_size, latest=None)
    finally:
        store.close()
        source.unlink()


def report_at(db: Path | str) -> dict[str, Any]:
    store = bootstrap.open_store(str(db))
    try:
        return current_report(store, CARD)
    finally:
        store.close()


def kept_reports(db: Path | str) -> dict[date, dict[str, Any]]:
    """The month-end reports the store kept, by date."""
    store = bootstrap.open_store(str(db))
    try:
        with queries.snapshot(store) as connection:
            return {day: queries.stored_report(connection, day) or {} for day in queries.snapshot_dates(connection)}
    finally:
        store.close()


def report_of(
    tmp_path: Path,
    events: Iterable[dict[str, Any] | str],
    as_of: date | None = None,
    batch_size: int = 5000,
    cache_limit: int = 250_000,
) -> dict[str, Any]:
    """The report of these events replayed onto a fresh store."""
    db = new_store(tmp_path, "r")
    replay_into(db, events, as_of=as_of, batch_size=batch_size, cache_limit=cache_limit)
    return report_at(db)


def unit_of(report: dict[str, Any], commune_id: str = "C0001", org: str = "HND") -> dict[str, Any]:
    return next(u for u in report["units"] if u["commune_id"] == commune_id and u["org"] == org)


def component(report: dict[str, Any], key: str, commune_id: str = "C0001", org: str = "HND") -> dict[str, Any]:
    found: dict[str, Any] = unit_of(report, commune_id, org)["components"][key]
    return found

"""The store: the source of truth, in SQL that runs on SQLite (embedded default) and PostgreSQL.

Tables hold order-independent summaries (`ledger.Loan`, `ledger.Group`), the unit counts, every
inspection, the event ids already accepted (durable dedupe) and small metadata (the clock, the
scorecard in use). One `UnitOfWork` is one transaction: whatever a batch changes commits together or
not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields as dataclass_fields
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from uythac.errors import StoreError
from uythac.ledger import Counts, Group, Loan, Unit

metadata = sa.MetaData()
ID = sa.String(64)
AREA = sa.String(32)

meta = sa.Table("meta", metadata, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
seen = sa.Table(
    "seen",
    metadata,
    sa.Column("event_id", ID, primary_key=True),
    sa.Column("digest", sa.LargeBinary(16), nullable=False),
)
loans = sa.Table(
    "loans",
    metadata,
    sa.Column("loan_id", ID, primary_key=True),
    sa.Column("district_id", AREA),
    sa.Column("commune_id", AREA),
    sa.Column("org", sa.String(4)),
    sa.Column("group_id", ID),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("disbursed_on", sa.Date),
    sa.Column("disbursal_event", ID),
    sa.Column("deadline", sa.Date),
    sa.Column("principal_paid", sa.BigInteger, nullable=False),
    sa.Column("last_repayment_on", sa.Date),
    sa.Column("overdue_principal", sa.BigInteger, nullable=False),
    sa.Column("overdue_on", sa.Date),
    sa.Column("overdue_event", ID),
    sa.Column("status", sa.String(16)),
    sa.Column("inspected_on", sa.Date),
    sa.Column("late_inspection_on", sa.Date),
    sa.Column("misuse", sa.Boolean, nullable=False),
    sa.Column("next_change", sa.Date),
    sa.Index("loans_next_change", "next_change"),
    sa.Index("loans_status_deadline", "status", "deadline"),
    sa.Index("loans_unit", "commune_id", "org"),
)
groups = sa.Table(
    "groups",
    metadata,
    sa.Column("group_id", ID, primary_key=True),
    sa.Column("district_id", AREA),
    sa.Column("commune_id", AREA),
    sa.Column("org", sa.String(4)),
    sa.Column("registered_on", sa.Date),
    sa.Column("registration_event", ID),
    sa.Column("closed_on", sa.Date),
    sa.Column("last_periodic_on", sa.Date),
    sa.Column("last_deposit_on", sa.Date),
    sa.Column("misuse", sa.Boolean, nullable=False),
    sa.Column("next_change", sa.Date),
    sa.Index("groups_next_change", "next_change"),
)
inspections = sa.Table(
    "inspections",
    metadata,
    sa.Column("event_id", ID, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("loan_id", ID),
    sa.Column("group_id", ID),
    sa.Column("inspected_on", sa.Date, nullable=False),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Index("inspections_loan", "loan_id"),
)
units = sa.Table(
    "units",
    metadata,
    sa.Column("commune_id", AREA, primary_key=True),
    sa.Column("org", sa.String(4), primary_key=True),
    sa.Column("district_id", AREA, nullable=False),
    sa.Column("district_day", sa.Date, nullable=False),
    sa.Column("district_event", ID, nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=False) for name in Counts._fields),
)

_LOAN_FIELDS = tuple(f.name for f in dataclass_fields(Loan))
_GROUP_FIELDS = tuple(f.name for f in dataclass_fields(Group))
CHUNK = 2000


class Store:
    """A SQLAlchemy engine and the schema; `unit_of_work()` opens one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    @classmethod
    def at(cls, path: Path | str) -> Store:
        """A SQLite file (WAL), or any SQLAlchemy URL given as is."""
        text = str(path)
        if "://" in text:
            return cls(text)
        Path(text).parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{text}")

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        with self.engine.begin() as connection:
            yield UnitOfWork(connection)

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        with self.engine.connect() as connection:
            yield UnitOfWork(connection)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash; WAL keeps it consistent
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class UnitOfWork:
    """Reads and writes of one transaction, in the vocabulary of the domain."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._dialect = connection.dialect.name

    # metadata -----------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        value = self.connection.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self._upsert(meta, ["key"], [{"key": key, "value": value}])

    def clock(self) -> date | None:
        value = self.get_meta("clock")
        return None if value is None else date.fromisoformat(value)

    def set_clock(self, today: date) -> None:
        self.set_meta("clock", today.isoformat())

    def claim_scorecard(self, digest: str) -> None:
        """Bind the store to one scorecard: its windows are baked into every stored count."""
        current = self.get_meta("scorecard")
        if current is None:
            self.set_meta("scorecard", digest)
        elif current != digest:
            raise StoreError(
                f"the store was built with scorecard {current}, not {digest}: "
                "use the same scorecard file or a new store"
            )

    # dedupe -------------------------------------------------------------------------------------
    def digests(self, event_ids: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for chunk in _chunks(event_ids):
            query = sa.select(seen.c.event_id, seen.c.digest).where(seen.c.event_id.in_(chunk))
            found.update((row.event_id, bytes(row.digest)) for row in self.connection.execute(query))
        return found

    def remember(self, accepted: Iterable[tuple[str, bytes]]) -> None:
        rows = [{"event_id": event_id, "digest": digest} for event_id, digest in accepted]
        if rows:
            self.connection.execute(seen.insert(), rows)

    # loans and groups ---------------------------------------------------------------------------
    def loans(self, loan_ids: Sequence[str]) -> dict[str, Loan]:
        return {loan.loan_id: loan for loan in self._select_loans(loans.c.loan_id, loan_ids)}

    def groups(self, group_ids: Sequence[str]) -> dict[str, Group]:
        found: dict[str, Group] = {}
        for chunk in _chunks(group_ids):
            query = sa.select(*(groups.c[name] for name in _GROUP_FIELDS)).where(groups.c.group_id.in_(chunk))
            found.update((row.group_id, Group(*row)) for row in self.connection.execute(query))
        return found

    def _select_loans(self, column: sa.Column[Any], values: Sequence[Any]) -> Iterator[Loan]:
        for chunk in _chunks(values):
            query = sa.select(*(loans.c[name] for name in _LOAN_FIELDS)).where(column.in_(chunk))
            for row in self.connection.execute(query):
                yield Loan(*row)

    def due_loan_ids(self, through: date) -> list[str]:
        """Loans whose contribution can change on or before `through`."""
        query = sa.select(loans.c.loan_id).where(loans.c.next_change <= through)
        return list(self.connection.execute(query).scalars())

    def due_group_ids(self, through: date) -> list[str]:
        query = sa.select(groups.c.group_id).where(groups.c.next_change <= through)
        return list(self.connection.execute(query).scalars())

    def open_obligations(self) -> list[tuple[str, date, date, str]]:
        query = sa.select(loans.c.loan_id, loans.c.disbursed_on, loans.c.deadline, loans.c.status).where(
            loans.c.status.in_(("pending", "due_soon"))
        )
        return [(row.loan_id, row.disbursed_on, row.deadline, row.status) for row in self.connection.execute(query)]

    def save_loans(self, changed: Iterable[Loan], deadline_days: int) -> None:
        rows = []
        for loan in changed:
            row = {name: getattr(loan, name) for name in _LOAN_FIELDS}
            row["deadline"] = None if loan.disbursed_on is None else loan.deadline_for(deadline_days)
            rows.append(row)
        self._upsert(loans, ["loan_id"], rows)

    def save_groups(self, changed: Iterable[Group]) -> None:
        self._upsert(groups, ["group_id"], [{n: getattr(g, n) for n in _GROUP_FIELDS} for g in changed])

    # inspections --------------------------------------------------------------------------------
    def add_inspections(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.connection.execute(inspections.insert(), list(rows))

    def loan_inspections(self, loan_ids: Sequence[str]) -> list[sa.Row[Any]]:
        found: list[sa.Row[Any]] = []
        for chunk in _chunks(loan_ids):
            query = sa.select(inspections).where(
                inspections.c.loan_id.in_(chunk), inspections.c.kind == "post_disbursement"
            )
            found.extend(self.connection.execute(query))
        return found

    # units --------------------------------------------------------------------------------------
    def units(self) -> dict[tuple[str, str], Unit]:
        found = {}
        for row in self.connection.execute(sa.select(units)):
            unit = Unit(
                row.commune_id,
                row.org,
                row.district_id,
                row.district_day,
                row.district_event,
                Counts(*(getattr(row, name) for name in Counts._fields)),
            )
            found[(unit.commune_id, unit.org)] = unit
        return found

    def save_units(self, changed: Iterable[Unit]) -> None:
        rows = [
            {
                "commune_id": unit.commune_id,
                "org": unit.org,
                "district_id": unit.district_id,
                "district_day": unit.district_day,
                "district_event": unit.district_event,
                **unit.counts._asdict(),
            }
            for unit in changed
        ]
        self._upsert(units, ["commune_id", "org"], rows)

    # queries for reports ------------------------------------------------------------------------
    def missed_loans(self, after: date, before: date) -> list[Loan]:
        """Flags: missed loans whose deadline lies in (after, before)."""
        query = (
            sa.select(*(loans.c[name] for name in _LOAN_FIELDS))
            .where(loans.c.status == "missed", loans.c.deadline > after, loans.c.deadline < before)
            .order_by(loans.c.commune_id, loans.c.org, loans.c.loan_id)
        )
        return [Loan(*row) for row in self.connection.execute(query)]

    # --------------------------------------------------------------------------------------------
    def _upsert(self, table: sa.Table, keys: list[str], rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        statement = dialect.insert(table)
        updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
        self.connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), rows)

"""The store: the source of truth, in SQL that runs on SQLite (embedded default) and PostgreSQL.

Tables hold order-independent summaries (`ledger.Loan`, `ledger.Group`), the unit counts, every
inspection, the event ids already accepted (durable dedupe) and small metadata (the clock, the
scorecard in use). One `UnitOfWork` is one transaction: whatever a batch changes commits together or
not at all.
"""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields as dataclass_fields
from datetime import date
from functools import cache, lru_cache
from itertools import compress
from operator import attrgetter, itemgetter, ne
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from uythac.errors import StoreError
from uythac.ledger import Counts, Group, Loan, Unit
from uythac.report import FLAG_KEYS

# Dates go into SQLite as ISO text and DATE columns come back as dates, by the driver itself (the
# stdlib's own default adapter and converter do the same but are deprecated from Python 3.12). A
# loaded loan has up to seven dates and most are recent days: the converter remembers a few thousand.
sqlite3.register_adapter(date, date.isoformat)
sqlite3.register_converter("DATE", lru_cache(maxsize=4096)(lambda text: date.fromisoformat(text.decode())))

metadata = sa.MetaData()
RETIRED_INDEXES = ("loans_status_deadline",)  # replaced by loans_status_unit and loans_status_district
ID = sa.String(64)
AREA = sa.String(32)

meta = sa.Table("meta", metadata, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
seen = sa.Table(
    "seen",
    metadata,
    sa.Column("event_id", ID, primary_key=True),
    sa.Column("digest", sa.LargeBinary(16), nullable=False),
    sqlite_with_rowid=False,
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
    sa.Index("loans_unit", "commune_id", "org"),
    # Flags and worklists by status, then area, then deadline (the key loan_id ends every index): a
    # commune's or a district's flags are a short range, not a scan of the province's window of flags.
    sa.Index("loans_status_unit", "status", "commune_id", "org", "deadline"),
    sa.Index("loans_status_district", "status", "district_id", "commune_id", "org", "deadline"),
    sqlite_with_rowid=False,
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
    sqlite_with_rowid=False,
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

offsets = sa.Table(
    "offsets",
    metadata,
    sa.Column("topic", sa.String(249), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(249), nullable=False),
    sa.Column("key", sa.LargeBinary),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", sa.Text, nullable=False),  # JSON list of [name, base64 value] pairs
)
snapshots = sa.Table(  # the SPEC §6 report at each month end the clock passed (gzip'd JSON), for ?as_of=
    "snapshots",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("report", sa.LargeBinary, nullable=False),
)

_LOAN_FIELDS = tuple(f.name for f in dataclass_fields(Loan))
_GROUP_FIELDS = tuple(f.name for f in dataclass_fields(Group))
# Loans and groups are written as whole rows: the tables list the dataclasses' fields in their order.
assert tuple(loans.columns.keys()) == _LOAN_FIELDS and tuple(groups.columns.keys()) == _GROUP_FIELDS
_LOAN_ROW, _GROUP_ROW = attrgetter(*_LOAN_FIELDS), attrgetter(*_GROUP_FIELDS)
_LOAN_DAYS = tuple(
    i for i, name in enumerate(_LOAN_FIELDS) if name.endswith("_on") or name in ("deadline", "next_change")
)
_GROUP_DAYS = tuple(i for i, name in enumerate(_GROUP_FIELDS) if name.endswith("_on") or name == "next_change")
CHUNK = 2048


class Store:
    """A SQLAlchemy engine and the schema; `unit_of_work()` opens one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            # check_same_thread=False: kafka-python's rebalance listener reads offsets from its own thread;
            # DATE columns come back as dates from the driver itself (see _sqlite_date), not from SQLAlchemy
            connect_args = {"check_same_thread": False, "detect_types": sqlite3.PARSE_DECLTYPES}
            self.engine: Engine = sa.create_engine(url, connect_args=connect_args, native_datetime=True)
        else:
            self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._create_schema()

    def _create_schema(self) -> None:
        """Create the missing tables and indexes, one process at a time (a worker and a reader may start
        together).

        Python's sqlite3 runs DDL outside any transaction of its own, so two processes could both find
        a table missing; BEGIN IMMEDIATE takes SQLite's write lock before the check.
        """
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            metadata.create_all(connection)
            for table in metadata.sorted_tables:  # and indexes added since the store was made
                for index in table.indexes:
                    index.create(connection, checkfirst=True)
            for name in RETIRED_INDEXES:
                connection.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
            connection.commit()

    @classmethod
    def at(cls, path: Path | str) -> Store:
        """A SQLite file (WAL), or any SQLAlchemy URL given as is."""
        text = str(path)
        if "://" in text:
            return cls(text)
        Path(text).parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{text}")

    @contextmanager
    def unit_of_work(self, rows: dict[str, dict[str, tuple[Any, ...]]] | None = None) -> Iterator[UnitOfWork]:
        """One transaction; `rows`: loan and group rows as stored, kept by the caller between transactions
        (`cache.Cache.rows`), which the unit of work reads before the store and keeps up to date."""
        with self.engine.begin() as connection:
            yield UnitOfWork(connection, rows)

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        with self.engine.connect() as connection:
            yield UnitOfWork(connection)

    def analyze(self) -> None:
        """Refresh the statistics SQLite's query planner picks indexes by (a sample: ~0.1 s for a province).

        Run after a replay and now and then by the worker; PostgreSQL's autovacuum does this itself.
        """
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA analysis_limit=1000")
            connection.exec_driver_sql("ANALYZE")
            connection.commit()

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Settings measured on a province-year replay (1.2 M events: 92 s → 70 s of CPU with the code)."""
    cursor = connection.cursor()
    # A new file gets 4 KiB pages. 1 KiB pages write fewer bytes for a row changed at a random place (a
    # loan, a seen event id), which paid while the WAL was checkpointed after every batch; with rare
    # checkpoints the shallower B-trees of bigger pages cost less CPU (replay: −10% CPU).
    cursor.execute("PRAGMA page_size=4096")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash; WAL keeps it consistent
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages: a fixed bound, whatever the history
    # A checkpoint costs two fsyncs (tens of ms here) whatever its size, and a batch of 5000 events
    # writes ~3000 pages to the WAL: checkpoint every ~8 batches (a WAL of up to ~100 MiB on disk),
    # not after each one as with the default 1000 pages.
    cursor.execute("PRAGMA wal_autocheckpoint=25000")
    cursor.close()


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class UnitOfWork:
    """Reads and writes of one transaction, in the vocabulary of the domain."""

    def __init__(self, connection: Connection, rows: dict[str, dict[str, tuple[Any, ...]]] | None = None) -> None:
        self.connection = connection
        self._dialect = connection.dialect.name
        self._loaded = {"loans": {}, "groups": {}} if rows is None else rows  # rows as stored, by table and key

    # metadata -----------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        value = self.connection.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self._run_many(_upsert(self.connection.dialect, meta), [(key, value)])

    def clock(self) -> date | None:
        value = self.get_meta("clock")
        return None if value is None else date.fromisoformat(value)

    def set_clock(self, today: date) -> None:
        self.set_meta("clock", today.isoformat())

    def next_version(self) -> None:
        """Count one more committed change of the scoring state (readers key what they cache by it)."""
        self.set_meta("version", str(int(self.get_meta("version") or 0) + 1))

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
        return {event_id: bytes(digest) for event_id, digest in self._rows_in(seen, ("event_id", "digest"), event_ids)}

    def claim(self, firsts: Iterable[tuple[str, bytes]]) -> dict[str, bytes]:
        """Record each (event id, digest) as seen, unless the id was seen before; the digests stored for
        those that were.

        One INSERT that does nothing on a known id, per id: SQLite runs in-process, and one B-tree search
        an id is a third cheaper than looking the batch's ids up and then inserting the new ones. (Over a
        network, PostgreSQL would want the ids in one statement with RETURNING instead.)
        """
        sql, names = _insert_new(self.connection.dialect, seen)
        cursor = self.connection.connection.cursor()
        known = []
        try:
            for row in firsts:
                cursor.execute(sql, _bound(names, row))
                if cursor.rowcount == 0:
                    known.append(row[0])
        finally:
            cursor.close()
        return self.digests(known)

    # loans and groups ---------------------------------------------------------------------------
    def loans(self, loan_ids: Sequence[str]) -> dict[str, Loan]:
        return {row[0]: Loan(*row) for row in self._read(loans, _LOAN_FIELDS, loan_ids)}

    def groups(self, group_ids: Sequence[str]) -> dict[str, Group]:
        return {row[0]: Group(*row) for row in self._read(groups, _GROUP_FIELDS, group_ids)}

    def due_loan_ids(self, through: date) -> list[str]:
        """The loans whose contribution can change on or before `through` (from the index alone)."""
        return [row[0] for row in driver_rows(self.connection, _select_due(self.connection.dialect, loans), [through])]

    def due_group_ids(self, through: date) -> list[str]:
        return [row[0] for row in driver_rows(self.connection, _select_due(self.connection.dialect, groups), [through])]

    def open_obligations(self) -> int:
        """Loans still waiting for their post-disbursement inspection (pending or due soon)."""
        query = sa.select(sa.func.count()).select_from(loans).where(loans.c.status.in_(("pending", "due_soon")))
        return int(self.connection.execute(query).scalar_one())

    def save_loans(self, changed: Iterable[Loan]) -> None:
        self._save(loans, list(map(_LOAN_ROW, changed)))

    def save_groups(self, changed: Iterable[Group]) -> None:
        self._save(groups, list(map(_GROUP_ROW, changed)))

    # inspections --------------------------------------------------------------------------------
    def add_inspections(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.connection.execute(inspections.insert(), list(rows))

    def loan_inspections(self, loan_ids: Sequence[str]) -> list[Mapping[str, Any]]:
        """The post-disbursement inspections of these loans, as rows like `add_inspections` takes."""
        names = ("loan_id", *(column.name for column in inspections.columns if column.name != "loan_id"))
        rows = (dict(zip(names, row, strict=True)) for row in self._rows_in(inspections, names, loan_ids))
        return [row for row in rows if row["kind"] == "post_disbursement"]

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
            (unit.commune_id, unit.org, unit.district_id, unit.district_day, unit.district_event, *unit.counts)
            for unit in changed
        ]
        self._run_many(_upsert(self.connection.dialect, units), rows)

    # month-end reports --------------------------------------------------------------------------
    def keep_report(self, as_of: date, report: Mapping[str, Any], months_kept: int) -> None:
        """Keep the report at a month end the clock passed (gzip'd JSON, ~0.5 MB for a province), and
        only the latest `months_kept` of them."""
        self._run_many(_upsert(self.connection.dialect, snapshots), [(as_of, gzip.compress(orjson.dumps(report), 1))])
        older = sa.select(snapshots.c.as_of).order_by(snapshots.c.as_of.desc()).offset(months_kept).limit(1)
        cut = self.connection.execute(older).scalar()
        if cut is not None:
            self.connection.execute(sa.delete(snapshots).where(snapshots.c.as_of <= cut))

    # queries for reports ------------------------------------------------------------------------
    def flag_entries(self, after: date, before: date) -> list[dict[str, Any]]:
        """Flags: the missed loans whose deadline lies in (after, before), as report entries in report
        order; dates come as text from the database (~3x faster than loans made and dated again), rows
        straight from the DBAPI cursor (a month-end report reads ten thousand of them)."""
        rows = driver_rows(self.connection, _select_flags(self.connection.dialect), ["missed", after, before])
        return [dict(zip(FLAG_KEYS, row, strict=True)) for row in rows]

    # Kafka offsets (the worker's source of truth) ----------------------------------------------
    def offsets(self, topic: str) -> dict[int, int]:
        """Next offset to read per partition, as committed with the state it produced."""
        query = sa.select(offsets.c.partition, offsets.c.next_offset).where(offsets.c.topic == topic)
        return {row.partition: row.next_offset for row in self.connection.execute(query)}

    def advance_offsets(self, topic: str, moves: dict[int, tuple[int | None, int]]) -> None:
        """Move each partition from its expected offset to the new one, or fail the whole transaction.

        The condition on the expected offset fences a worker that lost its partitions but still writes:
        its update matches no row and the batch rolls back.
        """
        for partition, (expected, new) in moves.items():
            if expected is None:
                self.connection.execute(
                    offsets.insert(), [{"topic": topic, "partition": partition, "next_offset": new}]
                )
                continue
            result = self.connection.execute(
                offsets.update()
                .where(offsets.c.topic == topic, offsets.c.partition == partition, offsets.c.next_offset == expected)
                .values(next_offset=new)
            )
            if result.rowcount != 1:
                raise StoreError(f"{topic}[{partition}] moved past offset {expected}: another worker owns it")

    # outbox ---------------------------------------------------------------------------------------
    def add_outbox(self, rows: Sequence[dict[str, Any]]) -> None:
        """Messages to send after commit: {topic, key, value, headers}; sent by `relay_batch`."""
        if rows:
            self.connection.execute(outbox.insert(), list(rows))

    def pending_outbox(self, limit: int) -> list[sa.Row[Any]]:
        query = sa.select(outbox).order_by(outbox.c.id).limit(limit)
        if self._dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(self.connection.execute(query))

    def remove_outbox(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(ids):
            self.connection.execute(outbox.delete().where(outbox.c.id.in_(chunk)))

    def outbox_backlog(self) -> int:
        return int(self.connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())

    # --------------------------------------------------------------------------------------------
    # bulk rows: SQL generated by SQLAlchemy from the tables above, run straight on the DBAPI cursor ---
    def _rows_in(self, table: sa.Table, columns: Sequence[str], keys: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows whose first column is one of `keys`, as plain tuples of `columns` (in chunks)."""
        cursor = self.connection.connection.cursor()
        try:
            for chunk in _chunks(keys):
                size = 1 << (len(chunk) - 1).bit_length()  # a few statement sizes, each compiled once
                padded = list(chunk) + [chunk[0]] * (size - len(chunk))
                cursor.execute(_select_in(self.connection.dialect, table, tuple(columns), size), padded)
                yield from cursor.fetchall()
        finally:
            cursor.close()

    def _read(self, table: sa.Table, columns: Sequence[str], keys: Sequence[str]) -> list[tuple[Any, ...]]:
        """Whole rows by key, remembered as read so that `_save` writes back only what changed."""
        rows = list(self._rows_in(table, columns, keys))
        self._loaded[table.name].update((row[0], row) for row in rows)
        return rows

    def _save(self, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert the new rows; update only the columns that changed in the others, so indexes on the
        columns that did not change are left alone (most events change two or three columns)."""
        loaded = self._loaded[table.name]
        inserts = []
        updates: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}  # changed positions → rows
        positions = range(len(table.columns))
        for row in rows:
            before = loaded.get(row[0])
            if before is None:
                inserts.append(row)
            elif row != before:
                updates.setdefault(tuple(compress(positions, map(ne, row, before))), []).append(row)
                loaded[row[0]] = row
        self._insert_many(table, inserts)
        for changed, changed_rows in updates.items():
            parameters = list(map(itemgetter(*changed, 0), changed_rows))  # the new values, then the key
            self._run_many(_update(self.connection.dialect, table, changed), parameters)
        loaded.update((row[0], row) for row in inserts)

    def _insert_many(self, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
        self._run_many(_insert(self.connection.dialect, table), rows)

    def _run_many(self, statement: tuple[str, tuple[str, ...] | None], rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        sql, names = statement
        cursor = self.connection.connection.cursor()
        try:
            cursor.executemany(sql, rows if names is None else [dict(zip(names, row, strict=True)) for row in rows])
        finally:
            cursor.close()


def driver_rows(
    connection: Connection, sql: str, parameters: Sequence[Any] | Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """All rows of one statement, run on the DBAPI cursor under `connection` (in its transaction): for SQL
    compiled once, SQLAlchemy's own execution costs tens of µs of Python a statement, and more per row."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, parameters)
        return list(cursor.fetchall())
    finally:
        cursor.close()


@cache
def _select_in(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...], size: int) -> str:
    key = table.c[columns[0]]
    query = sa.select(*(table.c[name] for name in columns)).where(key.in_([sa.bindparam(f"k{i}") for i in range(size)]))
    return _positional(query, dialect)


@cache
def _select_due(dialect: sa.Dialect, table: sa.Table) -> str:
    key = next(iter(table.primary_key))
    query = sa.select(key).where(table.c.next_change <= sa.bindparam("through"))
    return _positional(query, dialect)


@cache
def _select_flags(dialect: sa.Dialect) -> str:
    """The flag entries' columns (dates as text) of the missed loans whose deadline lies in (after, before)."""
    columns = [
        sa.cast(loans.c[name], sa.String) if isinstance(loans.c[name].type, sa.Date) else loans.c[name]
        for name in FLAG_KEYS
    ]
    query = (
        sa.select(*columns)
        .where(loans.c.status == "missed", loans.c.deadline > sa.bindparam("after"))
        .where(loans.c.deadline < sa.bindparam("before"))
        .order_by(loans.c.commune_id, loans.c.org, loans.c.loan_id)
    )
    return _positional(query, dialect)


Statement = tuple[str, tuple[str, ...] | None]  # SQL, and for a named paramstyle the parameter names


def _bound(names: tuple[str, ...] | None, row: Sequence[Any]) -> Sequence[Any] | dict[str, Any]:
    """One row's values as a statement takes them: in order, or by name."""
    return row if names is None else dict(zip(names, row, strict=True))


@cache
def _insert(dialect: sa.Dialect, table: sa.Table) -> Statement:
    return _parameters(table.insert(), dialect, tuple(column.name for column in table.columns))


@cache
def _insert_new(dialect: sa.Dialect, table: sa.Table) -> Statement:
    """INSERT of a whole row that does nothing if its key is there already."""
    statement = (postgresql if dialect.name == "postgresql" else sqlite).insert(table).on_conflict_do_nothing()
    return _parameters(statement, dialect, tuple(column.name for column in table.columns))


@cache
def _upsert(dialect: sa.Dialect, table: sa.Table) -> Statement:
    """INSERT of whole rows (columns in table order) that updates the row already there with that key."""
    statement = (postgresql if dialect.name == "postgresql" else sqlite).insert(table)
    keys = [column.name for column in table.primary_key]
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    upsert = statement.on_conflict_do_update(index_elements=keys, set_=updates)
    return _parameters(upsert, dialect, tuple(column.name for column in table.columns))


@cache
def _update(dialect: sa.Dialect, table: sa.Table, changed: tuple[int, ...]) -> Statement:
    """UPDATE of the columns at these positions, by the first column (the key); parameters in that order."""
    columns = list(table.columns)
    names = tuple(columns[i].name for i in changed)
    key = f"key_{columns[0].name}"
    statement = (
        table.update().where(columns[0] == sa.bindparam(key)).values({name: sa.bindparam(name) for name in names})
    )
    return _parameters(statement, dialect, (*names, key))


def _parameters(statement: Any, dialect: sa.Dialect, names: tuple[str, ...]) -> Statement:
    compiled = statement.compile(dialect=dialect)
    if compiled.positional:
        assert tuple(compiled.positiontup or ()) == names, "parameters must come in the order given"
        return str(compiled), None
    return str(compiled), names


def _positional(query: sa.Select[Any], dialect: sa.Dialect) -> str:
    compiled = query.compile(dialect=dialect)
    sql = str(compiled)
    if compiled.positional:
        return sql
    for name in compiled.params:  # pyformat (psycopg): %(k0)s → %s, in the order written
        sql = sql.replace(f"%({name})s", "%s")
    return sql

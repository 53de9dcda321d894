"""One transaction on the store, in the vocabulary of the domain (`service.ports.UnitOfWork`).

Whatever a batch changes (loans, groups, units, inspections, accepted event ids, the clock, Kafka offsets,
the outbox) commits together or not at all. Loans and groups are written back column by column: the rows
as stored are kept by the caller between transactions (`service.cache`), so only what changed is written.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from itertools import compress
from operator import ne
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from uythac.adapters.sql import statements
from uythac.adapters.sql.schema import (
    GROUPS,
    LOANS,
    OUTBOX_FIELDS,
    EntityTables,
    inspections,
    loans,
    meta,
    offsets,
    outbox,
    seen,
    snapshots,
    strays,
    units,
)
from uythac.core.dates import day_number, day_of
from uythac.core.events import DIGEST_SIZE
from uythac.core.model import OPEN, Counts, DutyStatus, Entity, Group, Loan, Status, Strays, Unit, UnitKey
from uythac.core.outputs import OutboxRow, StoredOutboxRow
from uythac.core.report import DutyRow, Flag
from uythac.errors import StoreError
from uythac.service.ports import OffsetMoves, Rows

WRITER_WAIT_S = 1.0  # waits for the writer lock this long before looking for a silent holder (again each time)


class SqlUnitOfWork:
    """Reads and writes of one transaction, in the vocabulary of the domain."""

    def __init__(self, connection: Connection, rows: Rows | None = None, silent_s: int = 0) -> None:
        self.connection = connection
        self._silent_s = silent_s  # PostgreSQL: a writer silent this long has its session ended (0: never)
        self._loaded = {"loans": {}, "groups": {}} if rows is None else rows
        self._keys: dict[str, int] = {}  # the last `n` given out, by kind

    # metadata -----------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        value = self.connection.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self._write("upsert", meta, [(key, value)])

    def beat(self, worker: str, lag: int, now: float) -> None:
        """This worker is alive at `now` (seconds since the epoch), `lag` messages behind on its partitions. A
        worker without a fixed name (`UYTHAC_KAFKA_INSTANCE_ID`) has a new one at each start: heartbeats silent
        for a day are dropped."""
        self._write("upsert", meta, [(HEARTBEAT + worker, f"{now:.3f}"), (LAG + worker, str(lag))])
        stale = [name for name, (at, _) in heartbeats(self.connection).items() if at < now - SILENT_FOR_GOOD_S]
        if stale:
            keys = [prefix + name for name in stale for prefix in (HEARTBEAT, LAG)]
            self.connection.execute(sa.delete(meta).where(meta.c.key.in_(keys)))

    def heartbeats(self) -> dict[str, tuple[float, int]]:
        return heartbeats(self.connection)

    def clock(self) -> date | None:
        value = self.get_meta("clock")
        return None if value is None else date.fromisoformat(value)

    def set_clock(self, today: date) -> None:
        self.set_meta("clock", today.isoformat())

    def next_version(self) -> None:
        """Count one more committed change of the scoring state (readers key what they cache by it)."""
        self.set_meta("version", str(int(self.get_meta("version") or 0) + 1))

    def take_writer(self) -> None:
        """Wait for the store's writer lock, held until this transaction ends: several workers share one
        PostgreSQL store, one batch at a time (each sees the state the ones before committed). SQLite takes
        its own write lock at the first write, and is written by one worker.

        A holder whose session has waited on its worker for `silent_s` (a frozen worker, or one on a host that
        stopped) has its session ended, which frees the lock: the server's idle-in-transaction timeout ends such a
        session only between statements, not one frozen in the middle of a pipeline of rows."""
        if self.connection.dialect.name != "postgresql":
            return
        if not self._silent_s:
            self.connection.exec_driver_sql(statements.WRITER_LOCK)
            return
        while not self.connection.exec_driver_sql(statements.TRY_WRITER_LOCK).scalar() and not self._writer_within(
            WRITER_WAIT_S
        ):
            self.connection.exec_driver_sql(statements.FRESH_ACTIVITY)
            self.connection.exec_driver_sql(statements.END_SILENT_WRITER, (self._silent_s,))

    def _writer_within(self, seconds: float) -> bool:
        """Has the writer lock come within `seconds`? (A lock wait that times out aborts its transaction: the
        wait runs in a savepoint.)"""
        savepoint = self.connection.begin_nested()
        try:
            self.connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{round(seconds * 1000)}ms'")
            self.connection.exec_driver_sql(statements.WRITER_LOCK)
        except sa.exc.OperationalError as error:
            if getattr(error.orig, "sqlstate", None) != statements.LOCK_NOT_AVAILABLE:
                raise
            savepoint.rollback()
            return False
        savepoint.commit()  # the lock is the transaction's
        self.connection.exec_driver_sql("SET LOCAL lock_timeout TO DEFAULT")
        return True

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

    def claim(self, first_digests: Mapping[str, bytes]) -> dict[str, bytes]:
        """Record each (event id, digest) as seen, unless the id was seen before; the digests stored for
        those that were."""
        digests = b"".join(first_digests.values())
        if len(digests) != DIGEST_SIZE * len(first_digests):
            raise ValueError(f"digest: every one must be {DIGEST_SIZE} bytes")
        if any("\x00" in event_id for event_id in first_digests):  # validation allows none: `ID_PATTERN`
            raise ValueError("event_id: a NUL character cannot be stored")
        if self.connection.dialect.name == "sqlite":
            return self._claim_at_once(first_digests, digests)
        return self._claim_in_arrays(first_digests)

    def _claim_at_once(self, firsts: Mapping[str, bytes], digests: bytes) -> dict[str, bytes]:
        """SQLite: two statements for the whole batch, the ids as one JSON array and the digests as one block of
        bytes (`DIGEST_SIZE` each, in the same order): the known ids are looked up, then the others inserted in
        key order, all inside SQLite and without Python's lock (1.6 µs an id for the bench province, against
        1.9 µs for an INSERT per id, most of the difference being Python's own cost per statement)."""
        array = orjson.dumps(list(firsts))
        cursor = self.connection.connection.cursor()
        try:
            (found,) = cursor.execute(statements.KNOWN_IDS, (array,)).fetchone()
            known = {event_id: bytes.fromhex(digest) for event_id, digest in orjson.loads(found)}
            cursor.execute(statements.NEW_IDS, (array, digests))
        finally:
            cursor.close()
        return known

    def _claim_in_arrays(self, firsts: Mapping[str, bytes]) -> dict[str, bytes]:
        """PostgreSQL: the batch's ids and digests as two arrays in one INSERT that does nothing on a known id and
        returns the ids it inserted; the digests of the others are read after (one round trip each, not one an
        id: over a network each costs more than the insert itself)."""
        ids = list(firsts)
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(statements.NEW_IDS_ARRAYS, (b"".join(firsts.values()), statements.array_literal(ids)))
            inserted = {row[0] for row in cursor.fetchall()}
        finally:
            cursor.close()
        return self.digests([event_id for event_id in ids if event_id not in inserted])

    # loans and groups ---------------------------------------------------------------------------
    def loans(self, loan_ids: Sequence[str]) -> dict[str, Loan]:
        return self._read(LOANS, loan_ids)

    def groups(self, group_ids: Sequence[str]) -> dict[str, Group]:
        return self._read(GROUPS, group_ids)

    def due_loan_ids(self, through: date) -> list[str]:
        """The loans whose contribution can change on or before `through` (found by the next_change index)."""
        return self._due(LOANS, through)

    def due_group_ids(self, through: date) -> list[str]:
        return self._due(GROUPS, through)

    def open_obligations(self) -> int:
        """Loans still waiting for their post-disbursement inspection (pending or due soon)."""
        query = (
            sa.select(sa.func.count()).select_from(loans).where(loans.c.status.in_([status.value for status in OPEN]))
        )
        return int(self.connection.execute(query).scalar_one())

    def save_loans(self, changed: Iterable[Loan]) -> None:
        self._save(LOANS, changed)

    def save_groups(self, changed: Iterable[Group]) -> None:
        self._save(GROUPS, changed)

    # inspections --------------------------------------------------------------------------------
    def add_inspections(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.connection.execute(inspections.insert(), list(rows))

    def loan_inspections(self, loan_ids: Sequence[str]) -> list[Mapping[str, Any]]:
        """The inspections that name these loans, as rows like `add_inspections` takes (periodic ones that found a
        loan misused among them)."""
        names = ("loan_id", *(column.name for column in inspections.columns if column.name != "loan_id"))
        rows = (dict(zip(names, row, strict=True)) for row in self._rows_in(inspections, names, loan_ids))
        return [{**row, "inspected_on": day_of(row["inspected_on"])} for row in rows]

    # what events of other units said of a loan or group ----------------------------------------------
    def strays(self, entity: Entity) -> Strays:
        kind, entity_id = _stray_key(entity)
        query = sa.select(strays.c.commune_id, strays.c.org, strays.c.activity).where(
            strays.c.kind == kind, strays.c.entity_id == entity_id
        )
        found: Strays = {}
        for commune_id, org, activity in self.connection.execute(query):
            kept = found[(commune_id, org)] = type(entity)(entity_id)
            for name, value in orjson.loads(activity).items():
                setattr(kept, name, date.fromisoformat(value) if name.endswith("_on") and value else value)
        return found

    def keep_strays(self, entity: Entity, kept: Strays) -> None:
        kind, entity_id = _stray_key(entity)
        self.connection.execute(sa.delete(strays).where(strays.c.kind == kind, strays.c.entity_id == entity_id))
        rows = [
            {
                "kind": kind,
                "entity_id": entity_id,
                "commune_id": commune_id,
                "org": org,
                "activity": orjson.dumps({name: getattr(held, name) for name in entity.ACTIVITY}).decode(),
            }
            for (commune_id, org), held in kept.items()
        ]
        if rows:
            self.connection.execute(strays.insert(), rows)

    # units --------------------------------------------------------------------------------------
    def units(self) -> dict[UnitKey, Unit]:
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
            (
                unit.commune_id,
                unit.org,
                unit.district_id,
                day_number(unit.district_day),
                unit.district_event,
                *unit.counts,
            )
            for unit in changed
        ]
        self._write("upsert", units, rows)

    # month-end reports --------------------------------------------------------------------------
    def keep_report(self, as_of: date, report: Mapping[str, Any], months_kept: int) -> None:
        """Keep the report at a month end the clock passed (gzip'd JSON, ~0.5 MB for a province), and
        only the latest `months_kept` of them. The gzip header's time is left at 0, so the same events keep the
        same bytes whenever they are replayed."""
        blob = gzip.compress(orjson.dumps(report), 1, mtime=0)
        self._write("upsert", snapshots, [(day_number(as_of), blob)])
        older = sa.select(snapshots.c.as_of).order_by(snapshots.c.as_of.desc()).offset(months_kept).limit(1)
        cut = self.connection.execute(older).scalar()
        if cut is not None:
            self.connection.execute(sa.delete(snapshots).where(snapshots.c.as_of <= cut))

    # queries for reports ------------------------------------------------------------------------
    def missed_loans(self, after: date, before: date) -> list[Flag]:
        """The flags: missed loans whose deadline lies in (after, before), in report order (commune, org, loan)."""
        bounds = [Status.MISSED.value, day_number(after), day_number(before)]
        return [
            Flag(
                loan_id,
                district_id,
                commune_id,
                org,
                day_of(disbursed),
                day_of(deadline),
                None if late is None else day_of(late),
            )
            for loan_id, district_id, commune_id, org, disbursed, deadline, late in statements.driver_rows(
                self.connection, statements.select_flags(self.connection.dialect), bounds
            )
        ]

    def open_duties(self) -> list[DutyRow]:
        """The inactive-loan duties pending or missed, in report order (commune, org, loan)."""
        return [
            DutyRow(
                loan_id,
                district,
                commune,
                org,
                DutyStatus(status),
                day_of(opened),
                None if late is None else day_of(late),
            )
            for loan_id, district, commune, org, status, opened, late in statements.driver_rows(
                self.connection, statements.select_duties(self.connection.dialect), ()
            )
        ]

    # Kafka offsets (the worker's source of truth) ----------------------------------------------
    def offsets(self, topic: str) -> dict[int, int]:
        """Next offset to read per partition, as committed with the state it produced."""
        query = sa.select(offsets.c.partition, offsets.c.next_offset).where(offsets.c.topic == topic)
        return {row.partition: row.next_offset for row in self.connection.execute(query)}

    def advance_offsets(self, topic: str, offset_moves: OffsetMoves) -> None:
        """Move each partition from its expected offset to the new one, or fail the whole transaction.

        The condition on the expected offset fences a worker that lost its partitions but still writes:
        its update matches no row and the batch rolls back.
        """
        for partition, (expected, new) in offset_moves.items():
            if expected is None:  # the partition's first batch: fenced too if another worker's came first
                row = {"topic": topic, "partition": partition, "next_offset": new}
                made = self.connection.execute(statements.first_offset(self.connection.dialect), row).first()
                if made is None:
                    raise StoreError(f"{topic}[{partition}] was started by another worker: it owns it")
                continue
            result = self.connection.execute(
                offsets.update()
                .where(offsets.c.topic == topic, offsets.c.partition == partition, offsets.c.next_offset == expected)
                .values(next_offset=new)
            )
            if result.rowcount != 1:
                raise StoreError(f"{topic}[{partition}] moved past offset {expected}: another worker owns it")

    # outbox ---------------------------------------------------------------------------------------
    def add_outbox(self, rows: Sequence[OutboxRow]) -> None:
        """Messages to send after commit, as (topic, key, value, headers) rows (`outbox.Message.row`)."""
        self._write("insert", outbox, rows, OUTBOX_FIELDS)

    def pending_outbox(self, limit: int) -> list[StoredOutboxRow]:
        """The oldest `limit` rows: (id, topic, key, value, headers). PostgreSQL skips rows another worker
        has locked."""
        return statements.driver_rows(self.connection, statements.select_outbox(self.connection.dialect, limit), ())

    def remove_outbox(self, ids: Sequence[int]) -> None:
        for chunk in statements.chunks(ids):
            self.connection.execute(outbox.delete().where(outbox.c.id.in_(chunk)))

    def outbox_backlog(self) -> int:
        return int(self.connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())

    # --------------------------------------------------------------------------------------------
    # bulk rows: SQL generated by SQLAlchemy from the tables above, run straight on the DBAPI cursor ---
    def _rows_in(self, table: sa.Table, columns: Sequence[str], keys: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows whose first column is one of `keys`, as plain tuples of `columns` (in chunks)."""
        cursor = self.connection.connection.cursor()
        try:
            for chunk in statements.chunks(keys):
                size = 1 << (len(chunk) - 1).bit_length()  # a few statement sizes, each compiled once
                padded = list(chunk) + [chunk[0]] * (size - len(chunk))
                cursor.execute(statements.select_in(self.connection.dialect, table, tuple(columns), size), padded)
                yield from cursor.fetchall()
        finally:
            cursor.close()

    def _read(self, kind: EntityTables, keys: Sequence[str]) -> dict[str, Any]:
        """Entities by id, with their rows remembered as stored (`_save` writes back only what changed)."""
        stored, found = self._loaded[kind.name], {}
        cursor = self.connection.connection.cursor()
        try:
            for chunk in statements.chunks(keys):
                size = 1 << (len(chunk) - 1).bit_length()  # a few statement sizes, each compiled once
                padded = list(chunk) + [chunk[0]] * (size - len(chunk))
                cursor.execute(statements.select_entities(self.connection.dialect, kind, size), padded)
                for n, *values in cursor.fetchall():
                    for i in kind.days:
                        if values[i] is not None:
                            values[i] = day_of(values[i])
                    for i in kind.shared_strings:
                        if values[i] is not None:
                            values[i] = sys.intern(values[i])
                    row = tuple(values)
                    stored[row[0]] = (n, row)
                    found[row[0]] = kind.make(*row)
        finally:
            cursor.close()
        return found

    def _due(self, kind: EntityTables, through: date) -> list[str]:
        rows = statements.driver_rows(
            self.connection, statements.select_due(self.connection.dialect, kind), [day_number(through)]
        )
        return [row[0] for row in rows]

    def _save(self, kind: EntityTables, entities: Iterable[Any]) -> None:
        """Insert the new entities; in the others update only the columns that changed, each in its own
        table: a repayment rewrites three values of `loan_balances` and leaves `loans` and its indexes alone."""
        stored, row_of, every = self._loaded[kind.name], kind.row, range(len(kind.fields))
        inserts: list[tuple[int, tuple[Any, ...]]] = []
        updates: dict[tuple[int, ...], list[tuple[int, tuple[Any, ...]]]] = {}  # changed positions → (n, row)
        for entity in entities:
            row = row_of(entity)
            before = stored.get(row[0])
            if before is None:
                n = self._new_key(kind)
                inserts.append((n, row))
                stored[row[0]] = (n, row)
            elif row != before[1]:
                n = before[0]
                updates.setdefault(tuple(compress(every, map(ne, row, before[1]))), []).append((n, row))
                stored[row[0]] = (n, row)
        if inserts:
            for table, positions in kind.everything:
                pick = statements.picker(positions, kind.days)
                names = ("n", *(kind.fields[i] for i in positions))
                self._write("insert", table, [(n, *pick(row)) for n, row in inserts], names)
        for changed, rows in updates.items():
            for table, positions in kind.placed(changed):
                pick = statements.picker(positions, kind.days)
                names = tuple(kind.fields[i] for i in positions)
                self._write("update", table, [(*pick(row), n) for n, row in rows], names)

    def _new_key(self, kind: EntityTables) -> int:
        """The next `n` of a kind (one writer at a time: the largest so far, plus one)."""
        last = self._keys.get(kind.name)
        if last is None:
            query = sa.select(sa.func.coalesce(sa.func.max(kind.tables[0].c.n), 0))
            last = int(self.connection.execute(query).scalar_one())
        self._keys[kind.name] = last + 1
        return last + 1

    def _write(
        self, how: str, table: sa.Table, rows: Sequence[Sequence[Any]], names: tuple[str, ...] | None = None
    ) -> None:
        """`how` ("insert", "upsert" of whole rows, "update" by `n`, given last) these rows of `names` (default: the
        table's columns): on PostgreSQL many rows as one statement of arrays (`statements.in_arrays`), else the
        driver's `executemany`."""
        if not rows:
            return
        dialect = self.connection.dialect
        names = names or tuple(column.name for column in table.columns)
        cursor = self.connection.connection.cursor()
        try:
            if dialect.name == "postgresql" and len(rows) >= statements.ARRAYS_FROM:
                columns = [statements.array_literal(column) for column in zip(*rows, strict=True)]
                cursor.execute(statements.in_arrays(dialect, table, how, names), columns)
                return
            if how == "update":
                sql, bound = statements.update(dialect, table, names)
            elif how == "upsert":
                sql, bound = statements.upsert(dialect, table)
            else:
                sql, bound = statements.insert(dialect, table, names)
            cursor.executemany(sql, rows if bound is None else [dict(zip(bound, row, strict=True)) for row in rows])
        finally:
            cursor.close()


HEARTBEAT, LAG = "worker_heartbeat:", "worker_lag:"  # meta keys of each worker's heartbeat, by its name
SILENT_FOR_GOOD_S = 86_400.0


def heartbeats(connection: Connection) -> dict[str, tuple[float, int]]:
    """Each worker's last heartbeat (seconds since the epoch) and its lag then, by the worker's name."""
    query = sa.select(meta.c.key, meta.c.value).where(
        sa.or_(meta.c.key.startswith(HEARTBEAT, autoescape=True), meta.c.key.startswith(LAG, autoescape=True))
    )
    values = {key: value for key, value in connection.execute(query)}
    return {
        key.removeprefix(HEARTBEAT): (float(value), int(values.get(LAG + key.removeprefix(HEARTBEAT)) or 0))
        for key, value in values.items()
        if key.startswith(HEARTBEAT)
    }


def _stray_key(entity: Entity) -> tuple[str, str]:
    return ("loan", entity.loan_id) if isinstance(entity, Loan) else ("group", entity.group_id)

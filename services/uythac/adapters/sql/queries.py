"""Read queries of the API: SQLAlchemy Core selects on the store's tables, each narrowed to an area.

Every answer is read inside `snapshot(store)`, one read transaction, so the parts of one answer (a
unit's counts, its flags, the clock they are at) come from the same committed state of the worker.
Nothing here scores or words anything: rows and domain objects out, shaping is `uythac.entrypoints.api.answers`.

Statements are built once per shape (which ids a selection fixes) with bound parameters, and reused:
building and keying a select costs ~0.3 ms of Python, about what SQLite takes to answer it. They are
compiled once per dialect too and run by the driver (`_rows`), not by SQLAlchemy's execution.
"""

from __future__ import annotations

import gzip
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cache, partial, reduce
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from uythac.adapters.sql.schema import Day, groups, loans, meta, seen, snapshots, units
from uythac.adapters.sql.statements import driver_rows
from uythac.adapters.sql.store import Store
from uythac.core.admission import Known
from uythac.core.areas import Selection
from uythac.core.model import OPEN, OPEN_DUTY, Counts, DutyStatus, Loan, Status, Unit
from uythac.core.worklist import DutyKind, WorkBounds, WorkItem


@dataclass(frozen=True)
class Page:
    """Rows `offset` to `offset + limit` of an ordered list, with the list's full length."""

    total: int
    rows: Sequence[Any]


NOTHING = Page(0, [])


@contextmanager
def snapshot(store: Store) -> Iterator[Connection]:
    """One read transaction: every select inside sees the same committed state.

    SQLite's driver starts no transaction for a SELECT on its own, so each statement would read the
    newest commit; an explicit BEGIN (deferred: it takes no lock, the snapshot starts at the first read)
    holds one WAL snapshot until the connection is returned, which rolls it back. PostgreSQL gets
    REPEATABLE READ, read only.
    """
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            driver_rows(connection, "BEGIN", ())  # rolled back when the pool takes the connection back
            yield connection
        else:
            with connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True).begin():
                yield connection


# statements run by the driver ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Prepared:
    """A select compiled once for a dialect: its SQL, its parameters as the driver takes them (by position
    in this order, or by name if None), the values it binds itself, the parameters and the columns whose
    values the driver does not take or give as SQLAlchemy would (dates kept as day numbers, SQLite's 0/1
    for a boolean)."""

    sql: str
    order: tuple[str, ...] | None
    fixed: dict[str, Any]
    bind: tuple[tuple[str, Callable[[Any], Any]], ...]
    convert: tuple[tuple[int, Callable[[Any], Any]], ...]


@cache
def _prepared(statement: sa.Select[Any], dialect: Dialect) -> _Prepared:
    compiled = statement.compile(dialect=dialect)
    bind = []
    for name, parameter in compiled.binds.items():
        assert not parameter.expanding, parameter
        process = parameter.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            bind.append((name, process))
    fixed = {name: p.effective_value for name, p in compiled.binds.items() if p.value is not None}
    columns = statement.selected_columns
    processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
    convert = tuple((index, process) for index, process in enumerate(processors) if process is not None)
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    return _Prepared(compiled.string, order, fixed, tuple(bind), convert)


def _rows(connection: Connection, statement: sa.Select[Any], parameters: Mapping[str, Any]) -> list[Any]:
    """The rows of `statement`, run by the driver's cursor: for the short selects of a request (a meta value,
    a count, a page, a loan) SQLAlchemy's execution takes ~40-50 µs of Python each, ~5 to 50 times SQLite's."""
    prepared = _prepared(statement, connection.dialect)
    values = {**prepared.fixed, **parameters}
    for name, process in prepared.bind:
        if name in values:
            values[name] = process(values[name])
    bound = values if prepared.order is None else [values[name] for name in prepared.order]
    rows = driver_rows(connection, prepared.sql, bound)
    if not prepared.convert:
        return rows
    converted = []
    for row in rows:
        fields = list(row)
        for index, process in prepared.convert:
            fields[index] = process(fields[index])
        converted.append(tuple(fields))
    return converted


# the store's meta values --------------------------------------------------------------------------
def meta_values(connection: Connection, *keys: str) -> dict[str, str]:
    query = sa.select(meta.c.key, meta.c.value).where(meta.c.key.in_(keys))
    return {row.key: row.value for row in connection.execute(query)}


_CLOCK = sa.select(meta.c.value).where(meta.c.key == "clock")
_VERSION = sa.select(meta.c.value).where(meta.c.key == "version")


def _meta_value(connection: Connection, statement: sa.Select[Any]) -> str | None:
    rows = _rows(connection, statement, {})
    return str(rows[0][0]) if rows else None


def clock(connection: Connection) -> date | None:
    """The store's T: the latest business date of all accepted events, None before the first."""
    value = _meta_value(connection, _CLOCK)
    return None if value is None else date.fromisoformat(value)


def version(connection: Connection) -> int:
    """How many batches changed the store: what an answer cached for a version of the state is keyed by."""
    return int(_meta_value(connection, _VERSION) or 0)


# lists: every row, or a page of them and how many in all -----------------------------------------------
@dataclass(frozen=True)
class _Listing:
    """The statements of one list shape: all its rows; its length; the rows of a page (:limit, :offset)."""

    every: sa.Select[Any]
    count: sa.Select[Any]
    page: sa.Select[Any]

    def run(self, connection: Connection, parameters: dict[str, Any], limit: int | None, offset: int) -> Page:
        if limit is None:
            rows = _rows(connection, self.every, parameters)
            return Page(len(rows), rows)
        total = int(_rows(connection, self.count, parameters)[0][0])
        if total <= offset:
            return Page(total, [])
        return Page(total, _rows(connection, self.page, {**parameters, "limit": limit, "offset": offset}))


def _equal(table: sa.Table, columns: tuple[str, ...]) -> list[sa.ColumnElement[bool]]:
    return [table.c[column] == sa.bindparam(column) for column in columns]


_LIMIT, _OFFSET = sa.bindparam("limit", type_=sa.Integer), sa.bindparam("offset", type_=sa.Integer)


def _listing(
    query: sa.Select[Any], page: sa.Select[Any] | None = None, count: sa.Select[Any] | None = None
) -> _Listing:
    """`query` (ordered) paged with LIMIT/OFFSET, unless `page` reads a page (:limit, :offset) another way;
    counted by `count` if given, else by counting its rows."""
    if count is None:
        count = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    return _Listing(query, count, query.limit(_LIMIT).offset(_OFFSET) if page is None else page)


def _tally(columns: tuple[str, ...], counts: Sequence[sa.ColumnElement[Any]]) -> sa.Select[Any] | None:
    """The sum of the units' `counts` over the units these ids select: how many loans or groups of a kind the
    selection has, read from a row per unit instead of counting the loans (a whole country's flags of the
    window are hundreds of thousands of index entries; its units, tens of thousands of rows). The units keep
    these counts at the store's T, in the worker's transaction that changes the loans (the flags of a unit are
    its assessed loans less those inspected in time: docs/contract.md §5). None when the ids fix a district: a
    loan or group carries the district of its own event, which may not be its unit's (docs/decisions.md)."""
    if "district_id" in columns:
        return None
    summed = sa.func.coalesce(sa.func.sum(reduce(operator.add, counts)), 0)
    return sa.select(summed).where(*_equal(units, columns))


# units ----------------------------------------------------------------------------------------------
_UNIT_COLUMNS = [units.c[name] for name in ("commune_id", "org", "district_id", "district_day", "district_event")]
_UNIT_COLUMNS += [units.c[name] for name in Counts._fields]
_COUNTS_AT = len(_UNIT_COLUMNS) - len(Counts._fields)
_counts = partial(tuple.__new__, Counts)  # Counts(*values) runs NamedTuple's Python-level __new__, per row


def _unit(row: Sequence[Any]) -> Unit:
    return Unit(row[0], row[1], row[2], row[3], row[4], _counts(row[_COUNTS_AT:]))


@cache
def _units_listing(columns: tuple[str, ...]) -> _Listing:
    order = (units.c.district_id, units.c.commune_id, units.c.org)
    return _listing(sa.select(*_UNIT_COLUMNS).where(*_equal(units, columns)).order_by(*order))


def units_of(connection: Connection, selection: Selection, limit: int | None = None, offset: int = 0) -> Page:
    """The reported units selected, ordered by (district, commune, org); a page of them if `limit` is given."""
    wanted = selection.equalities()
    if wanted is None:
        return NOTHING
    found = _units_listing(tuple(sorted(wanted))).run(connection, wanted, limit, offset)
    return Page(found.total, [_unit(row) for row in found.rows])


_UNIT = sa.select(*_UNIT_COLUMNS).where(*_equal(units, ("commune_id", "org")))


def unit(connection: Connection, commune_id: str, org: str) -> Unit | None:
    rows = _rows(connection, _UNIT, {"commune_id": commune_id, "org": org})
    return _unit(rows[0]) if rows else None


# loans ----------------------------------------------------------------------------------------------
# A loan as the API shows it: its obligation, from `loans` (what its repayments changed is not asked for).
_LOAN_COLUMNS = tuple(column for column in loans.columns if column.name in Loan.__dataclass_fields__)


def _loan(row: Sequence[Any]) -> Loan:
    return Loan(**{column.name: value for column, value in zip(_LOAN_COLUMNS, row, strict=True)})


_BY_UNIT: tuple[sa.ColumnElement[Any], ...] = (loans.c.commune_id, loans.c.org, loans.c.loan_id)
_FLAGS_OF_UNIT = units.c.loans_assessed - units.c.loans_inspected  # its missed loans of the window (T - W, T)
_BY_DEADLINE = (loans.c.deadline, *_BY_UNIT)


@cache
def _loans_listing(kind: str, columns: tuple[str, ...]) -> _Listing:
    """Whole loans of a kind (`flags`, `open` or `duties`) with these ids fixed.

    A page is found by its loan ids first, then only its rows are read, by those ids alone: the ids, the
    filters and the sort keys can all come from one index (status, deadline, district, commune, org, and
    the key loan_id), while sorting whole rows would read every matching loan from the table first. With
    the filters repeated beside the ids, SQLite does just that (~1 ms for a commune's 400 missed loans).
    """
    if kind == "flags":
        conditions = [loans.c.status == Status.MISSED.value, loans.c.deadline > sa.bindparam("after")]
        conditions += [loans.c.deadline < sa.bindparam("before")]
        order = _BY_UNIT
    elif kind == "duties":
        conditions, order = [loans.c.duty_status.in_([sa.literal(s.value) for s in OPEN_DUTY])], _BY_UNIT
    else:
        open_ = loans.c.status.in_([sa.literal(status.value) for status in OPEN])  # not expanded per execution
        conditions, order = [open_, loans.c.deadline <= sa.bindparam("through")], _BY_DEADLINE
    conditions += _equal(loans, columns)
    ids = sa.select(loans.c.loan_id).where(*conditions).order_by(*order).limit(_LIMIT).offset(_OFFSET)
    page = sa.select(*_LOAN_COLUMNS).where(loans.c.loan_id.in_(ids)).order_by(*order)
    count = _tally(columns, [_FLAGS_OF_UNIT]) if kind == "flags" else None
    return _listing(sa.select(*_LOAN_COLUMNS).where(*conditions).order_by(*order), page, count)


def _loans(
    connection: Connection, kind: str, bounds: dict[str, date], selection: Selection, limit: int | None, offset: int
) -> Page:
    wanted = selection.equalities()
    if wanted is None:
        return NOTHING
    found = _loans_listing(kind, tuple(sorted(wanted))).run(connection, {**bounds, **wanted}, limit, offset)
    return Page(found.total, [_loan(row) for row in found.rows])


def flags(
    connection: Connection, window: tuple[date, date], selection: Selection, limit: int | None = None, offset: int = 0
) -> Page:
    """Missed inspections whose deadline lies in the open window (after, before), by (commune, org, loan)."""
    after, before = window
    return _loans(connection, "flags", {"after": after, "before": before}, selection, limit, offset)


def open_duties(connection: Connection, selection: Selection, limit: int | None = None, offset: int = 0) -> Page:
    """Inactive loans whose duty is pending or missed, by (commune, org, loan) like the report."""
    return _loans(connection, "duties", {}, selection, limit, offset)


def open_obligations(
    connection: Connection, through: date, selection: Selection, limit: int | None = None, offset: int = 0
) -> Page:
    """Loans still waiting for their 30-day inspection with a deadline on or before `through`, soonest first."""
    return _loans(connection, "open", {"through": through}, selection, limit, offset)


# the worklist --------------------------------------------------------------------------------------
def _plus(day: sa.ColumnElement[Any], days: str) -> sa.ColumnElement[Any]:
    """`day` + the :days parameter, on the stored day numbers, read back as a date."""
    return sa.type_coerce(sa.type_coerce(day, sa.Integer) + sa.bindparam(days, type_=sa.Integer), Day)


def _items(table: sa.Table, duty: DutyKind, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """A select of WorkItem's columns: the duty, then `columns` (id, opened_on, deadline, status) with the area."""
    id_, opened_on, deadline, status = columns
    row = (
        sa.literal(duty.value),
        id_,
        table.c.district_id,
        table.c.commune_id,
        table.c.org,
        opened_on,
        deadline,
        status,
    )
    return sa.select(*(column.label(name) for column, name in zip(row, WorkItem._fields, strict=True)))


@dataclass(frozen=True)
class _WorkPart:
    """The items of one duty and kind of status: the select, the table its area is read from, and the units'
    count of each status it lists (`_tally`), if the units keep one."""

    table: sa.Table
    select: sa.Select[Any]
    tallies: Mapping[str, sa.ColumnElement[Any]] | None


def _work_parts(duty: str | None, status: str | None) -> list[_WorkPart]:
    """One part per duty and kind of status that the filters admit."""
    today = sa.bindparam("today", type_=Day)
    year_start = sa.bindparam("year_start", type_=Day)
    new_loan = (loans.c.loan_id, loans.c.disbursed_on, loans.c.deadline, loans.c.status)
    parts = [
        (
            DutyKind.NEW_LOAN,
            loans,
            tuple(s.value for s in OPEN),
            None,  # the units count loans by deadline in the scoring window only
            _items(loans, DutyKind.NEW_LOAN, *new_loan).where(
                loans.c.status.in_([sa.literal(s.value) for s in OPEN]),
                loans.c.deadline <= sa.bindparam("through", type_=Day),
            ),
        ),
        (
            DutyKind.NEW_LOAN,
            loans,
            (Status.MISSED.value,),
            {Status.MISSED.value: _FLAGS_OF_UNIT},
            _items(loans, DutyKind.NEW_LOAN, *new_loan).where(
                loans.c.status == Status.MISSED.value,
                loans.c.deadline > sa.bindparam("flagged_after", type_=Day),
                loans.c.deadline < today,
            ),
        ),
        (
            DutyKind.INACTIVE_LOAN,
            loans,
            tuple(s.value for s in OPEN_DUTY),
            {DutyStatus.PENDING.value: units.c.inactive_pending, DutyStatus.MISSED.value: units.c.inactive_missed},
            _items(
                loans,
                DutyKind.INACTIVE_LOAN,
                loans.c.loan_id,
                loans.c.duty_opened_on,
                _plus(loans.c.duty_opened_on, "inspection_days"),
                loans.c.duty_status,
            ).where(loans.c.duty_status.in_([sa.literal(s.value) for s in OPEN_DUTY])),
        ),
    ]
    opened = _plus(groups.c.registered_on, "seasoning_days")
    parts.append(
        (
            DutyKind.GROUP_OF_YEAR,
            groups,
            (DutyStatus.PENDING.value,),
            {DutyStatus.PENDING.value: units.c.year_pending},
            _items(
                groups,
                DutyKind.GROUP_OF_YEAR,
                groups.c.group_id,
                sa.case((opened > year_start, opened), else_=year_start),
                sa.bindparam("year_end", type_=Day),
                sa.literal(DutyStatus.PENDING.value),
            ).where(
                groups.c.registered_on <= sa.bindparam("seasoned_by", type_=Day),
                sa.or_(groups.c.closed_on.is_(None), groups.c.closed_on > today),
                sa.or_(groups.c.last_periodic_on.is_(None), groups.c.last_periodic_on < year_start),
            ),
        )
    )
    admitted = []
    for kind, table, statuses, tallies, select in parts:
        if duty not in (None, kind) or status not in (None, *statuses):
            continue
        if status is not None and len(statuses) > 1:
            select = select.where(select.selected_columns.status == status)
        if tallies is not None and status is not None:
            tallies = {status: tallies[status]}
        admitted.append(_WorkPart(table, select, tallies))
    return admitted


@cache
def _worklist_listing(columns: tuple[str, ...], duty: str | None, status: str | None) -> _Listing | None:
    """The worklist's statements for these fixed ids and filters; None if the filters admit no duty."""
    admitted = _work_parts(duty, status)
    if not admitted:
        return None
    parts = [part.select.where(*_equal(part.table, columns)).subquery() for part in admitted]
    items = sa.union_all(*(sa.select(*part.c) for part in parts)).subquery("items")
    # A page reads only the first offset + limit items of each duty's part (sorted each on its own), and the
    # count adds the parts' counts (the units' sums where they keep them, `_tally`): neither sorts nor carries
    # the whole province's items (~40 000 of them).
    firsts = (sa.select(*part.c).order_by(*_work_order(part)).limit(_OFFSET + _LIMIT).subquery() for part in parts)
    heads = sa.union_all(*(sa.select(*first.c) for first in firsts)).subquery("heads")
    counts = []
    for part, subquery in zip(admitted, parts, strict=True):
        tally = None if part.tallies is None else _tally(columns, list(part.tallies.values()))
        counts.append((sa.select(sa.func.count()).select_from(subquery) if tally is None else tally).scalar_subquery())
    return _Listing(
        sa.select(*items.c).order_by(*_work_order(items)),
        sa.select(reduce(operator.add, counts)),
        sa.select(*heads.c).order_by(*_work_order(heads)).limit(_LIMIT).offset(_OFFSET),
    )


def _work_order(items: sa.Subquery) -> tuple[sa.ColumnElement[Any], ...]:
    """The worklist's order: missed first, then by deadline (ties by unit, duty and id, so pages are stable)."""
    missed_first = sa.case((items.c.status == Status.MISSED.value, 0), else_=1)
    return (missed_first, items.c.deadline, items.c.commune_id, items.c.org, items.c.duty, items.c.id)


@cache
def _duties_by_district() -> sa.Select[Any]:
    items = sa.union_all(*(part.select for part in _work_parts(None, None))).subquery("items")
    keys = (items.c.district_id, items.c.duty, items.c.status)
    return sa.select(*keys, sa.func.count()).group_by(*keys)


def duties_by_district(connection: Connection, bounds: WorkBounds) -> dict[tuple[str, str, str], int]:
    """How many open items of each duty and status each district's worklist has at `bounds` (the metrics)."""
    parameters = _work_parameters(bounds)
    return {
        (district, duty, status): int(count)
        for district, duty, status, count in _rows(connection, _duties_by_district(), parameters)
    }


def worklist(
    connection: Connection,
    bounds: WorkBounds,
    selection: Selection,
    duty: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> Page:
    """The open items of the inspection duties in the selection at `bounds.today`, missed first, then by
    deadline (`core.worklist`); only the duty and status asked for, if any."""
    wanted = selection.equalities()
    listing = None if wanted is None else _worklist_listing(tuple(sorted(wanted)), duty, status)
    if wanted is None or listing is None:
        return NOTHING
    found = listing.run(connection, {**_work_parameters(bounds), **wanted}, limit, offset)
    return Page(found.total, [WorkItem(*row) for row in found.rows])


def _work_parameters(bounds: WorkBounds) -> dict[str, Any]:
    return {
        "through": bounds.through,
        "flagged_after": bounds.flagged_after,
        "today": bounds.today,
        "inspection_days": bounds.inspection_days,
        "seasoning_days": bounds.seasoning_days,
        "seasoned_by": bounds.seasoned_by,
        "year_start": bounds.year_start,
        "year_end": bounds.year_end,
    }


_LOAN = sa.select(*_LOAN_COLUMNS).where(loans.c.loan_id == sa.bindparam("loan_id"), loans.c.status.is_not(None))


def loan(connection: Connection, loan_id: str) -> Loan | None:
    """A disbursed loan; None for an id no `loan.disbursed` has named (yet), whatever else named it."""
    rows = _rows(connection, _LOAN, {"loan_id": loan_id})
    return _loan(rows[0]) if rows else None


_FLAGS_BY_DISTRICT = (
    sa.select(loans.c.district_id, sa.func.count())
    .where(loans.c.status == Status.MISSED.value, loans.c.deadline > sa.bindparam("after"))
    .where(loans.c.deadline < sa.bindparam("before"))
    .group_by(loans.c.district_id)
)


def flags_by_district(connection: Connection, window: tuple[date, date]) -> dict[str, int]:
    """How many missed inspections each district has in the window (the metrics' open-flags gauge)."""
    after, before = window
    rows = connection.execute(_FLAGS_BY_DISTRICT, {"after": after, "before": before})
    return {district: int(count) for district, count in rows}


# month-end snapshots ------------------------------------------------------------------------------
def snapshot_dates(connection: Connection) -> list[date]:
    return list(connection.execute(sa.select(snapshots.c.as_of).order_by(snapshots.c.as_of)).scalars())


_HAS_REPORT = sa.select(snapshots.c.as_of).where(snapshots.c.as_of == sa.bindparam("as_of", type_=Day))


def has_stored_report(connection: Connection, as_of: date) -> bool:
    """Is a report kept for this month end (without reading it)?"""
    return bool(_rows(connection, _HAS_REPORT, {"as_of": as_of}))


def stored_report(connection: Connection, as_of: date) -> dict[str, Any] | None:
    """The report the worker kept for this month end, or None if there is none."""
    blob = connection.execute(sa.select(snapshots.c.report).where(snapshots.c.as_of == as_of)).scalar()
    if blob is None:
        return None
    report: dict[str, Any] = orjson.loads(gzip.decompress(blob))
    return report


# what the API checks an event's ids against ----------------------------------------------------------
def known(
    connection: Connection,
    communes: Iterable[str],
    loan_ids: Iterable[str],
    group_ids: Iterable[str],
    event_ids: Iterable[str] = (),
) -> Known:
    """The district of each of these communes the store knows, and the unit of each of these loans (disbursed)
    and groups (registered) it knows; the digest of each of these events it has applied; the clock T. A
    commune's district is its earliest reported unit's."""
    districts: dict[str, str] = {}
    by_earliest = (
        sa.select(units.c.commune_id, units.c.district_id)
        .where(units.c.commune_id.in_(sa.bindparam("ids", expanding=True)))
        .order_by(units.c.district_day, units.c.district_event)
    )
    for commune, district in connection.execute(by_earliest, {"ids": sorted(set(communes))}):
        districts.setdefault(commune, district)
    places = {}
    for table, key, done in ((loans, "loan_id", loans.c.status), (groups, "group_id", groups.c.registered_on)):
        query = sa.select(table.c[key], table.c.district_id, table.c.commune_id, table.c.org).where(
            table.c[key].in_(sa.bindparam("ids", expanding=True)), done.is_not(None)
        )
        ids = sorted(set(loan_ids if key == "loan_id" else group_ids))
        places[key] = {row[0]: (row[1], row[2], row[3]) for row in connection.execute(query, {"ids": ids})}
    digests = sa.select(seen.c.event_id, seen.c.digest).where(seen.c.event_id.in_(sa.bindparam("ids", expanding=True)))
    applied = {row[0]: bytes(row[1]) for row in connection.execute(digests, {"ids": sorted(set(event_ids))})}
    return Known(districts, places["loan_id"], places["group_id"], clock(connection), applied)

"""Inspections: the 30-day ones missed (flags), and every open item of every inspection duty (the worklist)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response

from uythac.adapters.sql import queries
from uythac.core import report, worklist
from uythac.core.areas import Selection
from uythac.core.worklist import WorkBounds
from uythac.entrypoints.api import answers, tables
from uythac.entrypoints.api.auth import caller
from uythac.entrypoints.api.context import per_version, reading, services
from uythac.entrypoints.api.marshal import query
from uythac.entrypoints.api.schemas import (
    FlagsArgs,
    FlagSchema,
    FlagsPageSchema,
    WorkItemSchema,
    WorklistArgs,
    WorklistPageSchema,
)

bp = Blueprint("inspections", __name__)
_FLAGS_ARGS, _FLAGS_PAGE = FlagsArgs(), FlagsPageSchema()
_WORKLIST_ARGS, _WORKLIST_PAGE = WorklistArgs(), WorklistPageSchema()
FLAG_COLUMNS, WORK_COLUMNS = tables.columns(FlagSchema()), tables.columns(WorkItemSchema())


def _selection(args: dict[str, Any]) -> Selection:
    """The request's filters within the caller's area."""
    return Selection(caller().area, args.get("district_id"), args.get("commune_id"), args.get("org"))


@bp.get("/v1/flags")
@per_version
def list_flags() -> Response:
    """Loans whose 30-day inspection was missed, deadline in (T − W, T): the report's flags, a page at a time,
    by (commune, org, loan) like the report; as CSV on `Accept: text/csv`.
    ---
    get:
      summary: Missed 30-day inspections (flags)
      tags: [inspections]
      parameters: [{in: query, schema: FlagsArgs}]
      responses:
        200:
          description: A page of flags
          content: {application/json: {schema: FlagsPageSchema}, text/csv: {schema: {type: string}}}
          headers: {X-Total-Count: CsvTotal, X-As-Of: CsvAsOf}
        400: BadParameter
    """
    args = query(_FLAGS_ARGS)
    limit, offset = args["per_page"], (args["page"] - 1) * args["per_page"]
    today, total, items = flag_entries(_selection(args), limit, offset)
    return tables.answer(_FLAGS_PAGE, answers.page(today, args["page"], limit, total, items), FLAG_COLUMNS)


def flag_entries(
    selection: Selection, limit: int | None = None, offset: int = 0
) -> tuple[date | None, int, list[dict[str, Any]]]:
    """T, how many flags the selection has, and those from `offset` (`limit` of them; all: None), as the report
    lists them: the API's flags and the officers' workbook of them read it here."""
    connection = reading()
    today = queries.clock(connection)
    if today is None:
        return None, 0, []
    found = queries.flags(connection, report.window(today, services().card), selection, limit, offset)
    return today, found.total, [report.flag_entry(loan) for loan in found.rows]


@bp.get("/v1/worklist")
def get_worklist() -> Response:
    """The commune officer's list: every open item of every inspection duty at T, missed first, then by deadline
    (ties by commune, org, duty, id). New loans not yet inspected show when their deadline is at most
    `within_days` after T (0: due today; 30: the whole inspection period), missed ones while their deadline is
    in the assessed window; inactive loans pending or missed; groups without this year's periodic inspection.
    `duty` and `status` keep one kind. As CSV on `Accept: text/csv`.
    ---
    get:
      summary: Inspections to do (the worklist)
      tags: [inspections]
      parameters: [{in: query, schema: WorklistArgs}]
      responses:
        200:
          description: A page of the worklist
          content: {application/json: {schema: WorklistPageSchema}, text/csv: {schema: {type: string}}}
          headers: {X-Total-Count: CsvTotal, X-As-Of: CsvAsOf}
        400: BadParameter
    """
    args = query(_WORKLIST_ARGS)
    limit, offset = args["per_page"], (args["page"] - 1) * args["per_page"]
    today, total, items = worklist_items(
        _selection(args), args["within_days"], args.get("duty"), args.get("status"), limit, offset
    )
    return tables.answer(_WORKLIST_PAGE, answers.page(today, args["page"], limit, total, items), WORK_COLUMNS)


def worklist_items(
    selection: Selection,
    within_days: int,
    duty: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[date | None, int, list[dict[str, Any]]]:
    """T, how many items the selection's worklist has, and those from `offset` (`limit` of them; all: None):
    the API's worklist and the officers' pages and workbooks read it here."""
    connection = reading()
    today = queries.clock(connection)
    if today is None:
        return None, 0, []
    bounds = WorkBounds.at(today, services().card.windows, within_days)
    found = queries.worklist(connection, bounds, selection, duty, status, limit, offset)
    return today, found.total, [worklist.entry(item, today) for item in found.rows]

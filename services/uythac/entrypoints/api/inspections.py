"""Inspections: the 30-day ones missed (flags), and every open item of every inspection duty (the worklist)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Blueprint, Response
from marshmallow import Schema
from sqlalchemy.engine import Connection

from uythac.adapters.sql import queries
from uythac.adapters.sql.queries import Page
from uythac.core import report, worklist
from uythac.core.areas import Selection
from uythac.core.model import Loan
from uythac.core.worklist import WorkBounds
from uythac.entrypoints.api import answers
from uythac.entrypoints.api.auth import caller
from uythac.entrypoints.api.context import per_version, reading, services
from uythac.entrypoints.api.marshal import query, respond
from uythac.entrypoints.api.schemas import FlagsArgs, FlagsPageSchema, WorklistArgs, WorklistPageSchema

bp = Blueprint("inspections", __name__)
_FLAGS_ARGS, _FLAGS_PAGE = FlagsArgs(), FlagsPageSchema()
_WORKLIST_ARGS, _WORKLIST_PAGE = WorklistArgs(), WorklistPageSchema()


def _selection(args: dict[str, Any]) -> Selection:
    """The request's filters within the caller's area."""
    return Selection(caller().area, args.get("district_id"), args.get("commune_id"), args.get("org"))


@bp.get("/v1/flags")
@per_version
def list_flags() -> Response:
    """Loans whose 30-day inspection was missed, deadline in (T − W, T): the report's flags, a page at a time,
    by (commune, org, loan) like the report.
    ---
    get:
      summary: Missed 30-day inspections (flags)
      tags: [inspections]
      parameters: [{in: query, schema: FlagsArgs}]
      responses:
        200: {description: A page of flags, content: {application/json: {schema: FlagsPageSchema}}}
        400: BadParameter
    """
    card = services().card

    def found(connection: Connection, today: date, selection: Selection, limit: int, offset: int) -> Page:
        return queries.flags(connection, report.window(today, card), selection, limit, offset)

    return _loans_page(_FLAGS_PAGE, query(_FLAGS_ARGS), found, lambda loan, _: report.flag_entry(loan))


@bp.get("/v1/worklist")
def get_worklist() -> Response:
    """The commune officer's list: every open item of every inspection duty at T, missed first, then by deadline
    (ties by commune, org, duty, id). New loans not yet inspected show when their deadline is at most
    `within_days` after T (0: due today; 30: the whole inspection period), missed ones while their deadline is
    in the assessed window; inactive loans pending or missed; groups without this year's periodic inspection.
    `duty` and `status` keep one kind.
    ---
    get:
      summary: Inspections to do (the worklist)
      tags: [inspections]
      parameters: [{in: query, schema: WorklistArgs}]
      responses:
        200: {description: A page of the worklist, content: {application/json: {schema: WorklistPageSchema}}}
        400: BadParameter
    """
    args = query(_WORKLIST_ARGS)
    limit, offset = args["per_page"], (args["page"] - 1) * args["per_page"]
    today, total, items = worklist_items(
        _selection(args), args["within_days"], args.get("duty"), args.get("status"), limit, offset
    )
    return respond(_WORKLIST_PAGE, answers.page(today, args["page"], limit, total, items))


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


def _loans_page(
    schema: Schema,
    args: dict[str, Any],
    find: Callable[[Connection, date, Selection, int, int], Page],
    entry: Callable[[Loan, date], dict[str, Any]],
) -> Response:
    """A page of loans the `find` query selects at T in the caller's area, each shaped by `entry`."""
    limit, offset = args["per_page"], (args["page"] - 1) * args["per_page"]
    connection = reading()
    today = queries.clock(connection)
    found = Page(0, []) if today is None else find(connection, today, _selection(args), limit, offset)
    items = [] if today is None else [entry(loan, today) for loan in found.rows]
    return respond(schema, answers.page(today, args["page"], limit, found.total, items))

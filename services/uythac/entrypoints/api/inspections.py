"""The 30-day post-disbursement inspections: the ones missed (flags) and the ones still to do (worklist)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Blueprint, Response
from marshmallow import Schema
from sqlalchemy.engine import Connection

from uythac.adapters.sql import queries
from uythac.adapters.sql.queries import Page
from uythac.core import report
from uythac.core.areas import Selection
from uythac.core.model import Loan
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
    """The commune officer's list: loans not yet inspected whose deadline is at most `within_days` after T,
    soonest deadline first (ties by commune, org, loan). `within_days` runs from 0 (due today) to 30, the
    whole inspection period.
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

    def found(connection: Connection, today: date, selection: Selection, limit: int, offset: int) -> Page:
        return queries.open_obligations(connection, answers.later(today, args["within_days"]), selection, limit, offset)

    return _loans_page(_WORKLIST_PAGE, args, found, answers.obligation_entry)


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

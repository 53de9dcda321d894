"""The report and the province letter's table, for the caller's area, at T or a past month end.

The store holds the state at its clock T, not its history: a past date can be answered only from the
report the worker kept at each month end it passed (the scoring dates of the bank, like 30/11/2023 in
the letter). Any other past date is a 404 problem that lists the dates that can be answered, rather
than an answer recomputed from today's state that would be wrong for that day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, NoReturn

import orjson
from flask import Blueprint, Response
from sqlalchemy.engine import Connection

from uythac.adapters.sql import queries
from uythac.core import report
from uythac.core.areas import Selection
from uythac.entrypoints.api import answers
from uythac.entrypoints.api.auth import caller
from uythac.entrypoints.api.context import Services, reading, services
from uythac.entrypoints.api.marshal import JSON, query
from uythac.entrypoints.api.problems import Problem
from uythac.entrypoints.api.schemas import DistributionArgs, DistributionSchema, ReportArgs

bp = Blueprint("reports", __name__)
_REPORT_ARGS = ReportArgs()
_DISTRIBUTION_ARGS, _DISTRIBUTION = DistributionArgs(), DistributionSchema()


@bp.get("/v1/report")
def get_report() -> Response:
    """The report of the caller's area: units, flags and distribution, at T or a stored month end.

    A scoped key gets its district's or commune's units and flags, and the distribution of those units.
    The body is `report.build`'s, which writes the replay's report file too, sent as it is: dumping a
    province's report (2 000 units, tens of thousands of flags) through marshmallow would triple its time.
    ---
    get:
      summary: The report
      tags: [reports]
      parameters: [{in: query, schema: ReportArgs}]
      responses:
        200: {description: The report, content: {application/json: {schema: ReportSchema}}}
        400: BadParameter
        404: NoSnapshot
    """
    as_of: date | None = query(_REPORT_ARGS).get("as_of")
    selection = Selection(caller().area)
    context = services()
    connection = reading()
    today = queries.clock(connection)
    if as_of is not None and as_of != today:
        past = _past(
            context, connection, today, as_of, "report", selection, lambda full: answers.restrict(full, selection)
        )
        return Response(past, mimetype=JSON)
    body = report_at_t(context, connection, today, selection)
    return Response(body, mimetype=JSON)


def report_at_t(context: Services, connection: Connection, today: date | None, selection: Selection) -> bytes:
    """The report of the selection's area at T (`today`, the store's clock), as JSON, kept per store version
    (`create_app` makes the province's when a process starts: building it takes ~1 s of a province's Python)."""

    def build() -> bytes:
        units = queries.units_of(connection, selection).rows
        window = None if today is None else report.window(today, context.card)
        loans = [] if window is None else queries.flags(connection, window, selection).rows
        flags = [report.flag_entry(loan) for loan in loans]
        duties = [
            report.duty_entry(loan, context.card.windows) for loan in queries.open_duties(connection, selection).rows
        ]
        return orjson.dumps(report.build(today, units, flags, duties, context.card, context.scores.of))

    return context.bodies.get(("report", queries.version(connection), selection.area), build)


@bp.get("/v1/distribution")
def get_distribution() -> Response:
    """Units per class per district and org, and their total: the table of the province letter.

    Filtered by org and district if asked, and always by the caller's area; at T or a stored month end.
    ---
    get:
      summary: Units per class per district (the letter's table)
      tags: [reports]
      parameters: [{in: query, schema: DistributionArgs}]
      responses:
        200: {description: The distribution, content: {application/json: {schema: DistributionSchema}}}
        400: BadParameter
        404: NoSnapshot
    """
    args = query(_DISTRIBUTION_ARGS)
    selection = Selection(caller().area, district_id=args.get("district_id"), org=args.get("org"))
    return Response(distribution_body(selection, args.get("as_of")), mimetype=JSON)


def distribution_body(selection: Selection, as_of: date | None) -> bytes:
    """The distribution table of the selection at T or at the month end `as_of`, as JSON (kept): the API's
    answer, and what the officers' province page and its workbook show."""
    context = services()
    connection = reading()
    today = queries.clock(connection)
    if as_of is not None and as_of != today:

        def table(full: dict[str, Any]) -> Any:
            mine = answers.restrict(full, selection)
            return _DISTRIBUTION.dump(answers.distribution_table(mine["as_of"], mine["units"]))

        return _past(context, connection, today, as_of, "distribution", selection, table)

    def build() -> bytes:
        classes = [
            {"district_id": unit.district_id, "org": unit.org, "class": context.scores.of(unit.counts).rating}
            for unit in queries.units_of(connection, selection).rows
        ]
        return orjson.dumps(_DISTRIBUTION.dump(answers.distribution_table(answers.iso(today), classes)))

    return context.bodies.get(("distribution", queries.version(connection), selection), build)


def _past(
    context: Services,
    connection: Connection,
    today: date | None,
    as_of: date,
    kind: str,
    selection: Selection,
    answer: Callable[[dict[str, Any]], Any],
) -> bytes:
    """An answer from the report kept for a month end, made once per (month end, answer, area and filters) and
    kept: a month end's report never changes once kept (the clock passes each month end once), and reading one
    means decompressing and parsing a province's report (~0.1-0.2 s). Only its existence is asked each time (it
    may have been dropped as too old); else the 404 problem that says which dates have one."""
    if not queries.has_stored_report(connection, as_of):
        _missing(connection, today, as_of)

    def build() -> bytes:
        stored = queries.stored_report(connection, as_of)
        if stored is None:  # dropped between the two reads
            _missing(connection, today, as_of)
        return orjson.dumps(answer(stored))

    return context.bodies.get(("past", as_of, kind, selection), build)


def _missing(connection: Connection, today: date | None, as_of: date) -> NoReturn:
    """The 404 problem that says which dates have a report."""
    kept = [day.isoformat() for day in queries.snapshot_dates(connection)]
    now = "no clock yet" if today is None else f"T = {today.isoformat()} (the default)"
    detail = (
        f"no report for {as_of.isoformat()}: the API answers at {now} and at the month ends "
        f"whose report the worker kept: {', '.join(kept) or 'none yet'}"
    )
    raise Problem("no-snapshot", detail, extra={"available": ([today.isoformat()] if today else []) + kept})

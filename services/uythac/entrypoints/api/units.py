"""Units (a commune's organization): their scores, and for one of them what it lost and what to do next."""

from __future__ import annotations

from flask import Blueprint, Response

from uythac.adapters.sql import queries
from uythac.core import report
from uythac.core.areas import Selection
from uythac.entrypoints.api import answers
from uythac.entrypoints.api.auth import caller
from uythac.entrypoints.api.context import per_version, reading, services
from uythac.entrypoints.api.marshal import path, query, respond
from uythac.entrypoints.api.problems import Problem
from uythac.entrypoints.api.schemas import UnitDetailSchema, UnitPathArgs, UnitsArgs, UnitsPageSchema

bp = Blueprint("units", __name__)
_UNITS_ARGS, _UNITS_PAGE = UnitsArgs(), UnitsPageSchema()
_UNIT_PATH, _UNIT_DETAIL = UnitPathArgs(), UnitDetailSchema()


@bp.get("/v1/units")
@per_version
def list_units() -> Response:
    """The caller's units with score, class and components, by (district, commune, org), a page at a time.

    The class is a function of the score, not a column, so the class filter runs after scoring; a
    province has a few thousand units and their scores are kept between requests (`answers.Scores`).
    ---
    get:
      summary: Units and their scores
      tags: [units]
      parameters: [{in: query, schema: UnitsArgs}]
      responses:
        200: {description: A page of units, content: {application/json: {schema: UnitsPageSchema}}}
        400: BadParameter
    """
    args = query(_UNITS_ARGS)
    selection = Selection(caller().area, district_id=args.get("district_id"), org=args.get("org"))
    number, per_page = args["page"], args["per_page"]
    context = services()
    connection = reading()
    today = queries.clock(connection)
    if "class_" in args:  # every unit of the selection is scored to know its class; then a page of them
        found = queries.units_of(connection, selection).rows
        scored = [(u, s) for u in found if (s := context.scores.of(u.counts)).rating == args["class_"]]
        total, scored = len(scored), scored[(number - 1) * per_page : number * per_page]
    else:
        page = queries.units_of(connection, selection, per_page, (number - 1) * per_page)
        total, scored = page.total, [(u, context.scores.of(u.counts)) for u in page.rows]
    items = [answers.unit_summary(unit, score) for unit, score in scored]
    return respond(_UNITS_PAGE, answers.page(today, number, per_page, total, items))


@bp.get("/v1/units/<commune_id>/<org>")
@per_version
def get_unit(commune_id: str, org: str) -> Response:
    """One unit: its score, the points it lost in words (English and Vietnamese), its open flags (the
    missed 30-day inspections in the window) and its loans due for inspection within the due-soon days.

    A unit outside the caller's area is 404, exactly like a unit that does not exist.
    ---
    get:
      summary: One unit, explained
      tags: [units]
      parameters: [{in: path, schema: UnitPathArgs}]
      responses:
        200: {description: The unit, content: {application/json: {schema: UnitDetailSchema}}}
        400: BadParameter
        404: NotFound
    """
    path(_UNIT_PATH, {"commune_id": commune_id, "org": org})
    context = services()
    connection = reading()
    unit = queries.unit(connection, commune_id, org)
    if unit is None or not caller().area.covers(unit.district_id, unit.commune_id):
        raise Problem("not-found", f"no unit {commune_id}/{org} in the area of this API key")
    today = queries.clock(connection)
    assert today is not None, "a reported unit was named by an accepted event, which set the clock"
    mine = Selection(commune_id=commune_id, org=org)
    flags = queries.flags(connection, report.window(today, context.card), mine).rows
    due_by = answers.later(today, context.card.windows.due_soon_days)
    due = queries.open_obligations(connection, due_by, mine).rows
    return respond(_UNIT_DETAIL, answers.unit_detail(unit, context.scores, today, flags, due))

"""Units (a commune's organization): their scores, and for one of them what it lost and what to do next."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from uythac.adapters.sql import queries
from uythac.core import report
from uythac.core.areas import Area, Selection
from uythac.core.model import Unit
from uythac.core.report import UnitScore
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
    today = queries.clock(reading())
    total, scored = scored_units(selection, args.get("class_"), per_page, (number - 1) * per_page)
    items = [answers.unit_summary(unit, score) for unit, score in scored]
    return respond(_UNITS_PAGE, answers.page(today, number, per_page, total, items))


def scored_units(
    selection: Selection, rating: str | None = None, limit: int | None = None, offset: int = 0
) -> tuple[int, list[tuple[Unit, UnitScore]]]:
    """How many units the selection has (of class `rating`, if given), and those from `offset` with their
    scores (`limit` of them; all: None). The class is a function of the score, not a column, so the class
    filter runs after scoring: every unit of the selection is scored, then a page of them is kept."""
    context = services()
    connection = reading()
    if rating is not None:
        found = queries.units_of(connection, selection).rows
        scored = [(u, s) for u in found if (s := context.scores.of(u.counts)).rating == rating]
        end = None if limit is None else offset + limit
        return len(scored), scored[offset:end]
    page = queries.units_of(connection, selection, limit, offset)
    return page.total, [(u, context.scores.of(u.counts)) for u in page.rows]


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
    return respond(_UNIT_DETAIL, unit_detail(caller().area, commune_id, org))


def unit_detail(area: Area, commune_id: str, org: str) -> dict[str, Any]:
    """The unit's answer (`answers.unit_detail`) if `area` covers it; else the 404 problem."""
    context = services()
    connection = reading()
    unit = queries.unit(connection, commune_id, org)
    if unit is None or not area.covers(unit.district_id, unit.commune_id):
        raise Problem("not-found", f"no unit {commune_id}/{org} in the area of this API key")
    today = queries.clock(connection)
    assert today is not None, "a reported unit was named by an accepted event, which set the clock"
    mine = Selection(commune_id=commune_id, org=org)
    flags = queries.flags(connection, report.window(today, context.card), mine).rows
    due_by = answers.later(today, context.card.windows.due_soon_days)
    due = queries.open_obligations(connection, due_by, mine).rows
    return answers.unit_detail(unit, context.scores, today, flags, due)

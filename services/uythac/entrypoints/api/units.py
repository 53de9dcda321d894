"""Units (a commune's organization): their scores, a commune's units together, and for one unit what it lost and
what to do next."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from uythac.adapters.sql import queries
from uythac.core import report
from uythac.core.areas import Area, Selection
from uythac.core.model import Unit
from uythac.core.report import UnitScore
from uythac.entrypoints.api import answers, tables
from uythac.entrypoints.api.auth import caller
from uythac.entrypoints.api.context import per_version, reading, services
from uythac.entrypoints.api.marshal import path, query, respond
from uythac.entrypoints.api.problems import Problem
from uythac.entrypoints.api.schemas import (
    CommunePathArgs,
    CommuneSchema,
    UnitDetailSchema,
    UnitPathArgs,
    UnitsArgs,
    UnitsPageSchema,
    UnitSummarySchema,
)

bp = Blueprint("units", __name__)
_UNITS_ARGS, _UNITS_PAGE = UnitsArgs(), UnitsPageSchema()
_UNIT_PATH, _UNIT_DETAIL = UnitPathArgs(), UnitDetailSchema()
_COMMUNE_PATH, _COMMUNE = CommunePathArgs(), CommuneSchema()
UNIT_COLUMNS = tables.columns(UnitSummarySchema())


@bp.get("/v1/units")
@per_version
def list_units() -> Response:
    """The caller's units with score, class and components, by (district, commune, org) or by score, a page at a
    time; as CSV on `Accept: text/csv` (a column per field, nested ones by their path).

    The class is a function of the score, not a column, so the class filter and the sort by score run after
    scoring; a province has a few thousand units and their scores are kept between requests (`answers.Scores`).
    ---
    get:
      summary: Units and their scores
      tags: [units]
      parameters: [{in: query, schema: UnitsArgs}]
      responses:
        200:
          description: A page of units
          content: {application/json: {schema: UnitsPageSchema}, text/csv: {schema: {type: string}}}
          headers: {X-Total-Count: CsvTotal, X-As-Of: CsvAsOf}
        400: BadParameter
    """
    args = query(_UNITS_ARGS)
    selection = Selection(caller().area, args.get("district_id"), args.get("commune_id"), args.get("org"))
    number, per_page = args["page"], args["per_page"]
    today = queries.clock(reading())
    total, scored = scored_units(selection, args.get("class_"), per_page, (number - 1) * per_page, args["sort"])
    items = [answers.unit_summary(unit, score) for unit, score in scored]
    return tables.answer(_UNITS_PAGE, answers.page(today, number, per_page, total, items), UNIT_COLUMNS)


def scored_units(
    selection: Selection, rating: str | None = None, limit: int | None = None, offset: int = 0, sort: str = "place"
) -> tuple[int, list[tuple[Unit, UnitScore]]]:
    """How many units the selection has (of class `rating`, if given), and those from `offset` with their
    scores (`limit` of them; all: None), by place or by score (`sort`: place, score or -score; equal scores by
    place). The class is a function of the score, not a column, so the class filter and the sort by score run
    after scoring: every unit of the selection is scored, then a page of them is kept."""
    context = services()
    connection = reading()
    if rating is None and sort == "place":
        page = queries.units_of(connection, selection, limit, offset)
        return page.total, [(u, context.scores.of(u.counts)) for u in page.rows]
    scored = [(u, context.scores.of(u.counts)) for u in queries.units_of(connection, selection).rows]
    if rating is not None:
        scored = [(u, s) for u, s in scored if s.rating == rating]
    if sort != "place":  # a stable sort: equal scores stay by place
        scored.sort(key=lambda pair: pair[1].score if sort == "score" else -pair[1].score)
    end = None if limit is None else offset + limit
    return len(scored), scored[offset:end]


@bp.get("/v1/communes/<commune_id>")
@per_version
def get_commune(commune_id: str) -> Response:
    """A commune as a whole: the units of all its organizations that the caller may see, by org, with their
    scores and missed inspections. A key scoped to an organization sees that organization's unit only; a commune
    with no unit the caller may see is 404, like one that does not exist.
    ---
    get:
      summary: One commune, all its organizations
      tags: [units]
      parameters: [{in: path, schema: CommunePathArgs}]
      responses:
        200: {description: The commune, content: {application/json: {schema: CommuneSchema}}}
        400: BadParameter
        404: NotFound
    """
    path(_COMMUNE_PATH, {"commune_id": commune_id})
    total, scored = scored_units(Selection(caller().area, commune_id=commune_id))
    if not total:
        raise Problem("not-found", f"no commune {commune_id} in the area of this API key")
    units = [answers.unit_summary(unit, score) for unit, score in scored]
    body = {
        "as_of": answers.iso(queries.clock(reading())),
        "district_id": scored[0][0].district_id,
        "commune_id": commune_id,
        "open_flags": sum(unit["open_flags"] for unit in units),
        "units": units,
    }
    return respond(_COMMUNE, body)


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
    if unit is None or not area.covers(unit.district_id, unit.commune_id, unit.org):
        raise Problem("not-found", f"no unit {commune_id}/{org} in the area of this API key")
    today = queries.clock(connection)
    assert today is not None, "a reported unit was named by an accepted event, which set the clock"
    mine = Selection(commune_id=commune_id, org=org)
    flags = queries.flags(connection, report.window(today, context.card), mine).rows
    due_by = answers.later(today, context.card.windows.due_soon_days)
    due = queries.open_obligations(connection, due_by, mine).rows
    return answers.unit_detail(unit, context.scores, today, flags, due)

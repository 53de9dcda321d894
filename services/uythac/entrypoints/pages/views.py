"""The pages' views: each reads through the API's own functions within the officer's area, then renders."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import orjson
from flask import Blueprint, Response, current_app, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from uythac.adapters.sql import queries
from uythac.core.areas import Area, Selection
from uythac.core.scorecard import CLASSES
from uythac.entrypoints.api import answers
from uythac.entrypoints.api.auth import ApiKey, caller
from uythac.entrypoints.api.context import reading, services
from uythac.entrypoints.api.inspections import flag_entries, worklist_items
from uythac.entrypoints.api.loans import loan_status
from uythac.entrypoints.api.marshal import arguments
from uythac.entrypoints.api.problems import KINDS, Problem
from uythac.entrypoints.api.reports import distribution_body
from uythac.entrypoints.api.schemas import DistributionArgs, FlagsArgs, LoanPathArgs, UnitPathArgs, WorklistArgs
from uythac.entrypoints.api.units import scored_units, unit_detail
from uythac.entrypoints.pages import charts, officers, workbooks
from uythac.entrypoints.pages.history import History
from uythac.entrypoints.pages.officers import Throttle
from uythac.entrypoints.pages.words import CLASSES as CLASS_WORDS
from uythac.entrypoints.pages.words import COMPONENTS, DUTIES, LANGUAGES, ORGS, STATUSES, TEXT, day, number, word
from uythac.schemas.events import AREA_PATTERN, one_of
from uythac.schemas.events import ORGS as ORG_CODES
from uythac.settings import Settings

EXTENSION = "uythac.pages"
log = logging.getLogger(__name__)
bp = Blueprint("pages", __name__, url_prefix="/trang", template_folder="templates", static_folder="static")
OPEN_ENDPOINTS = {"pages.sign_in", "pages.static", "pages.language"}
SORTS = ("commune", "score", "score_desc", "missed", "due")
_AREA_ID = re.compile(AREA_PATTERN)
# Content-Security-Policy: nothing but this server's own styles and images; no script at all
_SECURITY = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class Pages:
    keys: dict[str, ApiKey]
    throttle: Throttle
    history: History
    per_page: int

    @classmethod
    def made(cls, keys: dict[str, ApiKey], settings: Settings) -> Pages:
        return cls(keys, Throttle(settings.pages_signin_failures), History(), settings.pages_per_page)


def pages() -> Pages:
    found: Pages = current_app.extensions[EXTENSION]
    return found


class DistrictArgs(Schema):
    error_messages = {"unknown": "not a parameter of this page"}  # noqa: RUF012 (marshmallow's own name)
    org = fields.String(validate=one_of(*ORG_CODES))
    class_ = fields.String(data_key="class", validate=one_of(*CLASSES))
    sort = fields.String(validate=one_of(*SORTS))


_DISTRICT_ARGS, _DISTRIBUTION_ARGS, _WORKLIST_ARGS = DistrictArgs(), DistributionArgs(), WorklistArgs()
_FLAGS_ARGS, _UNIT_PATH, _LOAN_PATH = FlagsArgs(), UnitPathArgs(), LoanPathArgs()


def language() -> str:
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else "vi"


def t(key: str, **values: Any) -> str:
    text = word(TEXT, key, language())
    return text.format(**values) if values else text


def _filled(schema: Schema) -> dict[str, Any]:
    """The query string by `schema`, as the API loads it (a 400 naming the field), but for the empty values that
    a form's "all" choice sends."""
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise Problem("bad-parameter", f"invalid parameter: {', '.join(repeated)}")
    return arguments(schema, {name: value for name, value in request.args.items() if value != ""})


# the officer, the forms, the answers' headers ------------------------------------------------------------
@bp.before_request
def _officer() -> ResponseReturnValue | None:
    if request.method == "POST" and not officers.csrf_ok(request.form):
        return _error(400, t("bad_request"), "CSRF")
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if officers.officer(pages().keys) is None:
        return redirect(url_for("pages.sign_in", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.update(_SECURITY)
    if request.endpoint != "pages.static":
        response.headers["Cache-Control"] = "no-store"  # an office PC is shared: no page kept on its disk
    return response


@bp.context_processor
def _helpers() -> dict[str, Any]:
    lang = language()
    key: ApiKey | None = g.get("api_key")
    return {
        "lang": lang,
        "t": t,
        "org_name": lambda code: word(ORGS, code, lang),
        "class_name": lambda key: word(CLASS_WORDS, key, lang),
        "component_name": lambda key: word(COMPONENTS, key, lang),
        "duty_name": lambda key: word(DUTIES, key, lang),
        "status_name": lambda key: word(STATUSES, key, lang),
        "num": lambda value: number(value, lang),
        "day": day,
        "csrf_token": officers.csrf_token,
        "officer": key,
        "area_words": None if key is None else _area_words(key.area),
        "classes": CLASSES,
        "org_codes": ORG_CODES if key is None or key.area.org is None else (key.area.org,),  # what it may pick
    }


def _area_words(area: Area) -> str:
    if area.commune_id is not None:
        place = t("area_commune", id=area.commune_id)
    elif area.district_id is not None:
        place = t("area_district", id=area.district_id)
    else:
        place = t("area_all")
    return place if area.org is None else f"{word(ORGS, area.org, language())}, {place}"


def _error(status: int, title: str, detail: str) -> Response:
    body = render_template("error.html", status=status, title=title, detail=detail)
    return Response(body, status=status, mimetype="text/html")


@bp.errorhandler(Problem)
def _problem(problem: Problem) -> Response:
    status = KINDS[problem.kind].status
    if status == 404:
        return _error(404, t("not_found"), t("not_found_text"))
    response = _error(status, t("bad_request"), problem.detail)
    response.headers.update(problem.headers)
    return response


@bp.errorhandler(HTTPException)
def _http(error: HTTPException) -> Response:
    return _error(error.code or 500, error.name, error.description or "")


def _next(target: str | None) -> str:
    """Where to go after signing in: a page of this site only (never another host)."""
    if target and target.startswith(officers.PATH + "/") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("pages.home")


# sign-in, sign-out, language --------------------------------------------------------------------------
@bp.route("/dang-nhap", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    target = _next(request.values.get("next"))
    if request.method == "GET":
        return render_template("signin.html", next=target, failed=False)
    state, where = pages(), officers.address(request)
    wait = state.throttle.wait(where)
    if wait > 0:
        seconds = max(1, round(wait))
        body = render_template("signin.html", next=target, failed=True, message=t("too_many", seconds=seconds))
        return Response(body, status=429, mimetype="text/html", headers={"Retry-After": str(seconds)})
    key = officers.sign_in(state.keys, request.form.get("key", ""))
    if key is None:
        state.throttle.failed(where)
        log.warning("pages sign-in refused", extra={"address": where, "wait_s": round(state.throttle.wait(where), 1)})
        body = render_template("signin.html", next=target, failed=True, message=t("bad_key"))
        return Response(body, status=401, mimetype="text/html")
    state.throttle.succeeded(where)
    log.info("pages sign-in", extra={"key": key.name, "address": where})
    return redirect(target, code=303)


@bp.post("/dang-xuat")
def sign_out() -> ResponseReturnValue:
    officers.sign_out()
    return redirect(url_for("pages.sign_in"), code=303)


def language_switch() -> ResponseReturnValue:
    chosen = request.form.get("lang")
    if chosen in LANGUAGES:
        session["lang"] = chosen
    return redirect(_next(request.form.get("next")), code=303)


bp.add_url_rule("/ngon-ngu", endpoint="language", view_func=language_switch, methods=["POST"])


@bp.get("/")
def home() -> ResponseReturnValue:
    area = caller().area
    if area.commune_id is not None:
        return redirect(url_for("pages.worklist"))
    if area.district_id is not None:
        return redirect(url_for("pages.district", district_id=area.district_id))
    return redirect(url_for("pages.province"))


# the province ------------------------------------------------------------------------------------------
def _province_table() -> tuple[dict[str, Any], date | None, list[date]]:
    """The letter's table for the officer's area at T or the asked month end (404 below the whole province)."""
    area = caller().area
    if area.district_id is not None or area.commune_id is not None:
        raise Problem("not-found", "the province's page needs a key of the whole province")
    as_of: date | None = _filled(_DISTRIBUTION_ARGS).get("as_of")
    table: dict[str, Any] = orjson.loads(distribution_body(Selection(area), as_of))
    connection = reading()
    return table, queries.clock(connection), sorted(queries.snapshot_dates(connection), reverse=True)


@bp.get("/tinh")
def province() -> str:
    table, today, kept = _province_table()
    lang = language()
    groups = [
        (org, [(key, word(CLASS_WORDS, key, lang), counts[key]) for key in CLASSES])
        for org, counts in table["distribution"].items()
    ]
    chart = Markup(charts.bars(groups, t("chart")))
    orgs = list(table["distribution"])
    return render_template("province.html", table=table, orgs=orgs, today=today, kept=kept, chart=chart)


@bp.get("/tinh.xlsx")
def province_workbook() -> Response:
    table, _, _ = _province_table()
    return _download(workbooks.distribution(table, language()), f"xep-loai-{table['as_of']}.xlsx")


# a district --------------------------------------------------------------------------------------------
def _sorted(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "commune": lambda row: (row["commune_id"], row["org"]),
        "score": lambda row: (row["score"], row["commune_id"], row["org"]),
        "score_desc": lambda row: (-row["score"], row["commune_id"], row["org"]),
        "missed": lambda row: (-row["open_flags"], row["commune_id"], row["org"]),
        "due": lambda row: (-row["due_soon"], row["commune_id"], row["org"]),
    }
    return sorted(rows, key=keys[sort])


@bp.get("/huyen/<district_id>")
def district(district_id: str) -> str:
    args = _filled(_DISTRICT_ARGS)
    area = caller().area
    if area.commune_id is not None or area.district_id not in (None, district_id) or not _AREA_ID.match(district_id):
        raise Problem("not-found", f"no district {district_id} in the area of this key")
    selection = Selection(area, district_id=district_id)
    total, scored = scored_units(selection)
    if not total:
        raise Problem("not-found", f"no district {district_id} in the area of this key")
    days = services().card.windows.due_soon_days
    today, _, due = worklist_items(selection, days, "new_loan", "due_soon")
    due_by_unit = Counter((item["commune_id"], item["org"]) for item in due)
    rows = [
        {**answers.unit_summary(unit, score), "due_soon": due_by_unit[unit.commune_id, unit.org]}
        for unit, score in scored
        if args.get("org") in (None, unit.org) and args.get("class_") in (None, score.rating)
    ]
    sort = args.get("sort", "commune")
    return render_template(
        "district.html", district_id=district_id, rows=_sorted(rows, sort), total=total, days=days, today=today,
        args=args, sort=sort, sorts=SORTS,
    )  # fmt: skip


# a unit, a loan ----------------------------------------------------------------------------------------
@bp.get("/xa/<commune_id>/<org>")
def unit(commune_id: str, org: str) -> str:
    arguments(_UNIT_PATH, {"commune_id": commune_id, "org": org})
    detail = unit_detail(caller().area, commune_id, org)
    lang = language()
    kept = pages().history.of(reading(), commune_id, org)
    points = [(day(as_of)[3:], score, number(score, lang)) for as_of, score in kept]
    chart = Markup(charts.line(points, t("history"))) if points else None
    return render_template("unit.html", unit=detail, chart=chart, days=services().card.windows.due_soon_days)


@bp.get("/mon-vay/<loan_id>")
def loan(loan_id: str) -> str:
    arguments(_LOAN_PATH, {"loan_id": loan_id})
    return render_template("loan.html", loan=loan_status(caller().area, loan_id))


# the worklist, the flags --------------------------------------------------------------------------------
def _worklist_selection(args: dict[str, Any]) -> Selection:
    return Selection(caller().area, args.get("district_id"), args.get("commune_id"), args.get("org"))


@bp.get("/danh-sach")
def worklist() -> str:
    args = _filled(_WORKLIST_ARGS)
    per_page = args["per_page"] if "per_page" in request.args else pages().per_page
    offset = (args["page"] - 1) * per_page
    today, total, items = _kept_worklist(
        _worklist_selection(args), args["within_days"], args.get("duty"), args.get("status"), per_page, offset
    )
    area = caller().area
    own = [unit for unit, _ in scored_units(Selection(area))[1]] if area.commune_id is not None else []
    pages_count = max(1, -(-total // per_page))
    kept = {name: value for name, value in request.args.items() if value and name != "page"}
    return render_template(
        "worklist.html", items=items, total=total, today=today, args=args, number=args["page"], pages=pages_count,
        kept=kept, duties=list(DUTIES), statuses=list(STATUSES)[:3], per_page=per_page, own=own,
    )  # fmt: skip


def _kept_worklist(
    selection: Selection, within_days: int, duty: str | None, status: str | None, limit: int, offset: int
) -> tuple[date | None, int, list[dict[str, Any]]]:
    """`worklist_items`, kept per store version as the API keeps its list pages (`caching`): a district's or the
    province's list costs tens of milliseconds of SQL (every open item of the area counted and sorted), and its
    officers page through it and come back to it between two batches of the worker."""
    connection = reading()
    key = ("pages.worklist", queries.version(connection), selection, within_days, duty, status, limit, offset)
    made = services().pages.get(
        key, lambda: orjson.dumps(worklist_items(selection, within_days, duty, status, limit, offset))
    )
    today, total, items = orjson.loads(made)
    return (None if today is None else date.fromisoformat(today)), total, items


@bp.get("/danh-sach.xlsx")
def worklist_workbook() -> Response:
    args = _filled(_WORKLIST_ARGS)
    today, _, items = worklist_items(
        _worklist_selection(args), args["within_days"], args.get("duty"), args.get("status")
    )
    return _download(workbooks.worklist(items, language()), f"danh-sach-kiem-tra-{answers.iso(today)}.xlsx")


@bp.get("/qua-han.xlsx")
def flags_workbook() -> Response:
    args = _filled(_FLAGS_ARGS)
    today, _, items = flag_entries(_worklist_selection(args))
    return _download(workbooks.flags(items, language()), f"qua-han-30-ngay-{answers.iso(today)}.xlsx")


@bp.get("/<path:unknown>")
def elsewhere(unknown: str) -> Response:
    """Any other address under /trang: the pages' own 404, not the API's JSON problem."""
    raise Problem("not-found", f"no page {unknown}")


def _download(body: bytes, name: str) -> Response:
    return Response(body, mimetype=workbooks.XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})

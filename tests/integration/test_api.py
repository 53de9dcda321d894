"""The API on Flask's test client, over a store filled by replay (no Kafka, no gunicorn): the pure parts
(the points lost in words, problem details, pagination, scopes) and every endpoint's choices.

The province: district D01 with communes C0001 (HND, HPN) and C0002 (HND), district D02 with C0101 (HND);
T = 2024-03-31, and a month-end report kept for 2024-02-29.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api_support import Keys, write_keys
from tests.kafka_broker import free_ports
from tests.pipeline import UYTHAC
from tests.support import (
    CARD,
    Stores,
    group,
    inspect,
    loan,
    new_store,
    periodic,
    repay,
    replay_into,
    report_at,
    report_of,
    tick,
)
from uythac import metrics
from uythac.adapters.sql.store import Store
from uythac.core import report
from uythac.core.dates import VIETNAM, month_end
from uythac.core.explanations import explain_score
from uythac.core.model import Counts
from uythac.entrypoints.api import create_app
from uythac.entrypoints.api.auth import load_keys
from uythac.entrypoints.api.caching import Bodies, Scores
from uythac.entrypoints.api.context import EXTENSION
from uythac.entrypoints.api.events import reason_errors
from uythac.entrypoints.api.schemas import (
    FlagsPageSchema,
    LoanSchema,
    ReportSchema,
    UnitDetailSchema,
    UnitsPageSchema,
    WorklistPageSchema,
)
from uythac.errors import ConfigError
from uythac.settings import Settings

D02 = {"district_id": "D02", "commune_id": "C0101"}
EVENTS = [
    group("G1", "2023-01-01"),
    loan("L1", "2024-01-01"),  # deadline 01-31, never inspected: a flag
    loan("L2", "2024-01-10"),
    inspect("L2", "2024-01-20"),
    loan("L3", "2024-03-20"),  # deadline 04-19: pending, not yet due soon at T
    loan("L4", "2024-03-05"),  # deadline 04-04 ≤ T + 7: due soon
    loan("L5", "2024-02-01"),  # deadline 03-02, inspected on 03-10: a flag with a late inspection
    inspect("L5", "2024-03-10"),
    group("G2", "2023-01-01", org="HPN"),
    loan("L6", "2024-02-15", group_id="G2", org="HPN"),
    inspect("L6", "2024-02-20", org="HPN"),
    group("G3", "2023-01-01", commune_id="C0002"),
    loan("L7", "2024-01-05", group_id="G3", commune_id="C0002"),
    group("G4", "2023-01-01", **D02),
    loan("L8", "2024-01-15", group_id="G4", **D02),
    loan("L9", "2024-03-25", group_id="G4", **D02),
    tick("2024-03-31"),
]
T = "2024-03-31"
MONTH_END = date(2024, 2, 29)
GETS = [
    "/v1/report",
    "/v1/distribution",
    "/v1/units",
    "/v1/units/C0001/HND",
    "/v1/flags",
    "/v1/worklist",
    "/v1/loans/L1",
]


@dataclass(frozen=True)
class Province:
    db: str
    keys: Keys
    month_end: dict[str, Any]  # the report kept for MONTH_END
    new_store: Callable[[], str]  # an empty store of the same kind


def _in_date_order(store: str) -> str:
    """The province replayed in date order, so the report kept when the clock passed MONTH_END holds every event
    dated by then."""
    replay_into(store, sorted(EVENTS, key=lambda event: event["occurred_at"]))
    return store


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def province(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Province]:
    """The province on SQLite, then on the session's PostgreSQL: every test of the API runs on both stores."""
    directory = tmp_path_factory.mktemp("api")
    if request.param == "postgresql":
        Stores.postgres = request.getfixturevalue("postgres_server")
    try:
        new = partial(new_store, directory, "province")
        yield Province(_in_date_order(new()), write_keys(directory), report_of(directory, EVENTS, as_of=MONTH_END), new)
    finally:
        Stores.postgres = None
        while _apps:
            _apps.pop().extensions[EXTENSION].store.close()


_apps: list[Flask] = []  # closed with the province: a PostgreSQL connection left to the collector warns


def _app(province: Province, **settings: Any) -> Flask:
    closed = f"127.0.0.1:{free_ports(1)[0]}"  # Kafka is never there: POST /v1/events finds out within a second
    defaults = {"api_keys_file": str(province.keys.path), "kafka_bootstrap": closed, "api_produce_timeout_ms": 1000}
    _apps.append(create_app(Settings(db=province.db, **(defaults | settings))))
    return _apps[-1]


@pytest.fixture(scope="module")
def client(province: Province) -> FlaskClient:
    return _app(province).test_client()


@pytest.fixture(scope="module")
def keys(province: Province) -> Keys:
    return province.keys


def get(client: FlaskClient, keys: Keys, path: str, key: str = "all", status: int = 200) -> Any:
    response = client.get(path, headers=keys.header(key))
    assert response.status_code == status, response.data
    return response.get_json()


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status and body["instance"] == response.request.path
    assert {"type", "title", "detail"} <= set(body)
    return body


# the points lost, in words, written once ----------------------------------------------------------
def test_a_scores_words_are_written_once() -> None:
    scores = Scores(CARD)
    scored = scores.of(Counts(19, 20, loans_inactive=1, loans_seasoned=100_000))
    words = scores.explained(scored)
    assert words == tuple(asdict(explanation) for explanation in explain_score(scored, CARD.windows))
    assert scores.explained(scored) is words


# problems ---------------------------------------------------------------------------------------------
def test_reasons_become_field_errors() -> None:
    reason = "amount: must be between 1 and 10000000000; loan_id: required"
    assert reason_errors(reason, "2.") == [
        {"field": "2.amount", "detail": "must be between 1 and 10000000000"},
        {"field": "2.loan_id", "detail": "required"},
    ]
    assert reason_errors("message: not a JSON object (a JSON list)") == [
        {"field": "message", "detail": "not a JSON object (a JSON list)"}
    ]


def test_bad_parameters_are_400_problems_naming_each(client: FlaskClient, keys: Keys) -> None:
    response = client.get("/v1/units?per_page=501&page=0&bogus=1&class=good", headers=keys.header("all"))
    body = _problem(response, 400)
    assert body["type"].endswith("/bad-parameter")
    assert {e["field"] for e in body["errors"]} == {"per_page", "page", "bogus", "class"}
    twice = _problem(client.get("/v1/flags?org=HND&org=HPN", headers=keys.header("all")), 400)
    assert twice["errors"] == [{"field": "org", "detail": "given more than once"}]
    for path, field in [
        ("/v1/loans/" + "L" * 65, "loan_id"),
        ("/v1/units/C0001/XYZ", "org"),
        ("/v1/units/" + "C" * 33 + "/HND", "commune_id"),
        ("/v1/worklist?within_days=31", "within_days"),
        ("/v1/report?as_of=2024-2-29", "as_of"),
        ("/v1/distribution?district_id=D%2001", "district_id"),
    ]:
        assert [e["field"] for e in _problem(client.get(path, headers=keys.header("all")), 400)["errors"]] == [field]


def test_http_errors_are_problems_too(client: FlaskClient, keys: Keys) -> None:
    assert _problem(client.get("/v2/nothing"), 404)["type"] == "about:blank"
    not_allowed = client.delete("/v1/units", headers=keys.header("all"))
    assert _problem(not_allowed, 405)["title"] == "Method Not Allowed"
    assert "GET" in not_allowed.headers["Allow"]


# auth and scopes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [*GETS, "/v1/events"])
def test_no_key_or_a_bad_key_is_401_everywhere(client: FlaskClient, path: str) -> None:
    method = client.post if path == "/v1/events" else client.get
    missing = method(path)
    assert _problem(missing, 401)["type"].endswith("/unauthorized")
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="uythac"'
    wrong = method(path, headers={"Authorization": "Bearer uythac_not-a-key"})
    assert _problem(wrong, 401)["detail"] == "this API key is not configured"
    assert wrong.headers["WWW-Authenticate"] == 'Bearer realm="uythac", error="invalid_token"'


def test_without_a_keys_file_every_keyed_request_is_refused(province: Province) -> None:
    client = _app(province, api_keys_file="").test_client()
    body = _problem(client.get("/v1/units", headers=province.keys.header("all")), 401)
    assert body["detail"] == "no API keys are configured on this server"
    assert client.get("/healthz").status_code == 200


def test_scoped_keys_see_their_area_only(client: FlaskClient, keys: Keys) -> None:
    def units(key: str, query: str = "") -> list[tuple[str, str]]:
        return [(u["commune_id"], u["org"]) for u in get(client, keys, f"/v1/units{query}", key)["items"]]

    assert units("all") == [("C0001", "HND"), ("C0001", "HPN"), ("C0002", "HND"), ("C0101", "HND")]
    assert units("d01") == [("C0001", "HND"), ("C0001", "HPN"), ("C0002", "HND")]
    assert units("c0001") == [("C0001", "HND"), ("C0001", "HPN")]
    assert units("nowhere") == []
    assert units("c0001", "?district_id=D02") == []  # a filter never widens a key's area
    assert [f["loan_id"] for f in get(client, keys, "/v1/flags", "d01")["items"]] == ["L1", "L5", "L7"]
    worklist = get(client, keys, "/v1/worklist?within_days=30", "c0001")["items"]
    assert [w["id"] for w in worklist] == ["L1", "L5", "L4", "L3", "L1", "G1", "G2"]


@pytest.mark.parametrize(("key", "path"), [("c0001", "/v1/units/C0002/HND"), ("d01", "/v1/loans/L8")])
def test_outside_the_area_is_404_as_if_it_did_not_exist(client: FlaskClient, keys: Keys, key: str, path: str) -> None:
    assert _problem(client.get(path, headers=keys.header(key)), 404)["type"].endswith("/not-found")
    assert client.get(path, headers=keys.header("all")).status_code == 200


def test_report_and_distribution_cover_the_area(client: FlaskClient, keys: Keys) -> None:
    mine = get(client, keys, "/v1/report", "c0001")
    assert [f["loan_id"] for f in mine["flags"]] == ["L1", "L5"]
    assert {u["commune_id"] for u in mine["units"]} == {"C0001"}
    assert sum(mine["distribution"]["HND"].values()) == 1
    table = get(client, keys, "/v1/distribution", "d01")
    assert [d["district_id"] for d in table["districts"]] == ["D01"]
    assert sum(table["distribution"]["HND"].values()) == 2
    past = get(client, keys, f"/v1/distribution?as_of={MONTH_END}", "c0001")
    assert past["as_of"] == MONTH_END.isoformat() and sum(past["distribution"]["HND"].values()) == 1


def test_metrics_and_health_can_need_a_key(province: Province) -> None:
    client = _app(province, api_open_health=0, api_open_metrics=0).test_client()
    keys = province.keys
    assert client.get("/healthz").status_code == 401
    assert client.get("/healthz", headers=keys.header("c0001")).status_code == 200
    assert client.get("/metrics").status_code == 401
    assert _problem(client.get("/metrics", headers=keys.header("d01")), 403)["type"].endswith("/forbidden")
    assert client.get("/metrics", headers=keys.header("all")).status_code == 200
    document = client.get("/openapi.json").get_json()
    assert document["paths"]["/metrics"]["get"]["security"] == [{"bearer": []}]


def test_keys_files_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - {name: x, hash: " + "a" * 64 + ", scope: 'province:1'}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="scope must be"):
        load_keys(str(path))
    path.write_text("keys:\n" + ("  - {name: x, hash: " + "a" * 64 + ", scope: all}\n") * 2, encoding="utf-8")
    with pytest.raises(ConfigError, match="configured twice"):
        load_keys(str(path))


def test_apikey_prints_a_working_key_once_and_its_entry(tmp_path: Path) -> None:
    done = subprocess.run(
        [UYTHAC, "apikey", "--name", "xa-c0001", "--scope", "commune:C0001"], capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    (tmp_path / "keys.yaml").write_text("keys:\n" + lines[-1] + "\n", encoding="utf-8")
    [configured] = load_keys(str(tmp_path / "keys.yaml")).values()
    assert (configured.name, configured.scope) == ("xa-c0001", "commune:C0001")
    assert lines[0].startswith("uythac_") and lines[0] not in lines[-1]
    refused = subprocess.run([UYTHAC, "apikey", "--name", "x", "--scope", "everyone"], capture_output=True, text=True)
    assert refused.returncode == 2 and "scope must be" in refused.stderr


# the endpoints ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "schema"),
    [
        ("/v1/report", ReportSchema),
        ("/v1/units", UnitsPageSchema),
        ("/v1/units/C0001/HND", UnitDetailSchema),
        ("/v1/flags", FlagsPageSchema),
        ("/v1/worklist?within_days=30", WorklistPageSchema),
        ("/v1/loans/L2", LoanSchema),
        ("/v1/loans/L5", LoanSchema),
    ],
)
def test_bodies_are_their_schemas_dump(client: FlaskClient, keys: Keys, path: str, schema: type) -> None:
    """Every body is what its documented schema dumps, byte for byte (the report too, which is sent as the
    store built it: the contract fixes its shape)."""
    body = client.get(path, headers=keys.header("all")).data
    assert orjson.dumps(schema().dump(orjson.loads(body))) == body


def test_the_report_is_the_stores(client: FlaskClient, keys: Keys, province: Province) -> None:
    assert get(client, keys, "/v1/report") == report_at(province.db)
    assert get(client, keys, f"/v1/report?as_of={T}") == report_at(province.db)


def test_past_reports_come_from_month_end_snapshots_only(client: FlaskClient, keys: Keys, province: Province) -> None:
    assert get(client, keys, f"/v1/report?as_of={MONTH_END}") == province.month_end
    assert get(client, keys, "/v1/report?as_of=2024-01-31")["as_of"] == "2024-01-31"
    missing = _problem(client.get("/v1/report?as_of=2024-02-15", headers=keys.header("all")), 404)
    assert missing["type"].endswith("/no-snapshot")
    kept = [month_end(date(2023, month, 1)).isoformat() for month in range(1, 13)]  # since the first event
    assert missing["available"] == [T, *kept, "2024-01-31", MONTH_END.isoformat()]
    assert MONTH_END.isoformat() in missing["detail"]
    assert client.get("/v1/distribution?as_of=2025-01-31", headers=keys.header("all")).status_code == 404


def test_pages_cover_every_unit_once_in_order(client: FlaskClient, keys: Keys) -> None:
    seen = []
    for number in (1, 2, 3):
        body = get(client, keys, f"/v1/units?per_page=2&page={number}")
        assert (body["page"], body["per_page"], body["total"]) == (number, 2, 4)
        seen += [(u["district_id"], u["commune_id"], u["org"]) for u in body["items"]]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 4
    assert get(client, keys, "/v1/flags?per_page=1&page=9")["items"] == []
    classes = {u["class"] for u in get(client, keys, "/v1/units")["items"]}
    for rating in classes:
        assert {u["class"] for u in get(client, keys, f"/v1/units?class={rating}")["items"]} == {rating}


def test_units_filter_by_commune_and_sort_weakest_first(client: FlaskClient, keys: Keys) -> None:
    def units(query: str, key: str = "all") -> list[tuple[str, str, float]]:
        items = get(client, keys, f"/v1/units{query}", key)["items"]
        return [(u["commune_id"], u["org"], u["score"]) for u in items]

    assert [u[:2] for u in units("?commune_id=C0001")] == [("C0001", "HND"), ("C0001", "HPN")]
    assert units("?commune_id=C0101", "d01") == []
    by_score = units("?sort=score")
    assert [u[2] for u in by_score] == sorted(u[2] for u in by_score)
    ties = [u[:2] for u in by_score if [v[2] for v in by_score].count(u[2]) > 1]
    assert ties == sorted(ties)  # equal scores by place
    assert units("?sort=-score") == sorted(by_score, key=lambda u: -u[2])
    assert units("?sort=score&per_page=1&page=2") == by_score[1:2]
    assert _problem(client.get("/v1/units?sort=name", headers=keys.header("all")), 400)["errors"][0]["field"] == "sort"


def test_a_commune_holds_all_its_organizations_units(client: FlaskClient, keys: Keys) -> None:
    commune = get(client, keys, "/v1/communes/C0001")
    assert (commune["district_id"], commune["commune_id"], commune["as_of"]) == ("D01", "C0001", T)
    assert [u["org"] for u in commune["units"]] == ["HND", "HPN"]
    assert commune["units"] == get(client, keys, "/v1/units?commune_id=C0001")["items"]
    assert commune["open_flags"] == sum(u["open_flags"] for u in commune["units"]) == 2
    assert _problem(client.get("/v1/communes/C0101", headers=keys.header("d01")), 404)["type"].endswith("/not-found")
    assert _problem(client.get("/v1/communes/C9999", headers=keys.header("all")), 404)
    assert _problem(client.get("/v1/communes/C0001?x=1", headers=keys.header("all")), 400)


@pytest.mark.parametrize("path", ["/v1/units?sort=score", "/v1/flags", "/v1/worklist?within_days=30&per_page=3&page=2"])
def test_lists_answer_csv_with_the_same_rows(client: FlaskClient, keys: Keys, path: str) -> None:
    wanted = {**keys.header("d01"), "Accept": "text/csv"}
    listed = get(client, keys, path, "d01")
    for _ in range(2):  # the second from the kept answers, if any: CSV and JSON are kept apart
        answer = client.get(path, headers=wanted)
        assert answer.status_code == 200 and answer.mimetype == "text/csv"
        assert (answer.headers["X-Total-Count"], answer.headers["X-As-Of"]) == (str(listed["total"]), T)
        rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
        assert len(rows) == len(listed["items"]) > 0
        for row, item in zip(rows, listed["items"], strict=True):
            for name, value in item.items():
                cell = row[name] if not isinstance(value, dict) else row[next(c for c in row if c.startswith(name))]
                if not isinstance(value, dict):
                    assert cell == ("" if value is None else str(value)), (name, cell, value)
                else:
                    assert cell != ""
    assert get(client, keys, path, "d01") == listed  # JSON still JSON after CSV
    either = client.get(path, headers={**keys.header("d01"), "Accept": "application/json, text/csv;q=0.5"})
    assert either.mimetype == "application/json"


def test_a_unit_explains_its_score_and_lists_its_work(client: FlaskClient, keys: Keys) -> None:
    unit = get(client, keys, "/v1/units/C0001/HND")
    assert unit["as_of"] == T and unit["open_flags"] == 2
    assert [f["loan_id"] for f in unit["flags"]] == ["L1", "L5"]
    assert unit["flags"][1]["late_inspection_on"] == "2024-03-10"
    assert [(d["loan_id"], d["status"], d["days_left"]) for d in unit["due_soon"]] == [("L4", "due_soon", 4)]
    first = unit["explanations"][0]
    assert first["component"] == "post_disbursement_inspection"
    assert first["en"] == "Lost 6.67 of 10 points: 2 of 3 loans were not inspected within 30 days of disbursement"
    assert first["vi"] == "Mất 6,67/10 điểm: 2/3 món vay không được kiểm tra trong 30 ngày sau giải ngân"
    assert _problem(client.get("/v1/units/C0001/DTN", headers=keys.header("all")), 404)


def test_the_worklist_lists_every_open_item_of_every_duty_missed_first_then_by_deadline(
    client: FlaskClient, keys: Keys
) -> None:
    def items(query: str = "") -> list[tuple[str, str, str, str, str, int]]:
        found = get(client, keys, f"/v1/worklist{query}")["items"]
        return [(w["duty"], w["id"], w["opened_on"], w["deadline"], w["status"], w["days_left"]) for w in found]

    missed = [
        ("new_loan", "L1", "2024-01-01", "2024-01-31", "missed", -60),
        ("new_loan", "L7", "2024-01-05", "2024-02-04", "missed", -56),
        ("new_loan", "L8", "2024-01-15", "2024-02-14", "missed", -46),
        ("new_loan", "L5", "2024-02-01", "2024-03-02", "missed", -29),
    ]
    # L1 was disbursed on T − 90 and never repaid: inactive since then, its duty opens on T
    inactive = ("inactive_loan", "L1", "2024-03-31", "2024-04-30", "pending", 30)
    groups = [
        ("group_of_year", group, "2024-01-01", "2024-12-31", "pending", 275) for group in ("G1", "G2", "G3", "G4")
    ]
    due_soon = ("new_loan", "L4", "2024-03-05", "2024-04-04", "due_soon", 4)
    assert items() == [*missed, due_soon, inactive, *groups]
    assert items("?within_days=0") == [*missed, inactive, *groups]
    later = [
        ("new_loan", "L3", "2024-03-20", "2024-04-19", "pending", 19),
        ("new_loan", "L9", "2024-03-25", "2024-04-24", "pending", 24),
    ]
    assert items("?within_days=30") == [*missed, due_soon, *later, inactive, *groups]
    assert items("?duty=inactive_loan") == [inactive]
    assert items("?duty=group_of_year&status=missed") == []
    assert items("?status=pending&within_days=30") == [*later, inactive, *groups]
    assert items("?duty=new_loan&status=missed&district_id=D02") == [missed[2]]
    page = get(client, keys, "/v1/worklist?per_page=2&page=3")
    assert (page["total"], [w["id"] for w in page["items"]]) == (10, ["L4", "L1"])


def test_a_unit_says_what_it_must_still_inspect_this_year(client: FlaskClient, keys: Keys) -> None:
    unit = get(client, keys, "/v1/units/C0001/HND")
    assert unit["duties"] == {
        "inactive_loan": {"pending": 1, "missed": 0, "done": 0},
        "group_of_year": {"pending": 1, "done": 0, "missed_last_year": 1},  # registered 01/01/2023
    }
    assert unit["to_inspect"] == {
        "en": "Still to inspect in 2024: 1 of 1 savings-and-loan group (this year's periodic inspection, by "
        "31/12/2024); 1 loan with no transaction for 90 days or more.",
        "vi": "Còn phải kiểm tra năm 2024: 1/1 tổ TK&VV (kiểm tra định kỳ năm 2024, hạn 31/12/2024); 1 món vay "
        "không có giao dịch từ 90 ngày trở lên.",
    }


def test_the_worklist_pages_together_are_the_whole_list(client: FlaskClient, keys: Keys) -> None:
    """A page reads only the head of each duty's part: every page size still gives the whole list in order."""
    whole = [(w["duty"], w["id"]) for w in get(client, keys, "/v1/worklist?within_days=30")["items"]]
    for per_page in (1, 2, 3, 4, 7):
        pages = []
        for number in range(1, len(whole) // per_page + 2):
            page = get(client, keys, f"/v1/worklist?within_days=30&per_page={per_page}&page={number}")
            assert page["total"] == len(whole)
            pages += [(w["duty"], w["id"]) for w in page["items"]]
        assert pages == whole, per_page


def test_worklist_filters_are_checked(client: FlaskClient, keys: Keys) -> None:
    for query, field in (("duty=loan", "duty"), ("status=done", "status")):
        body = _problem(client.get(f"/v1/worklist?{query}", headers=keys.header("all")), 400)
        assert field in body["detail"], body


def test_a_loan_is_its_status_and_no_more(client: FlaskClient, keys: Keys) -> None:
    body = get(client, keys, "/v1/loans/L5")
    assert body["misuse"] is False  # a boolean, not the 0 SQLite keeps
    assert body == {
        "as_of": T,
        "loan_id": "L5",
        "district_id": "D01",
        "commune_id": "C0001",
        "org": "HND",
        "group_id": "G1",
        "disbursed_on": "2024-02-01",
        "deadline": "2024-03-02",
        "status": "missed",
        "inspected_on": None,
        "late_inspection_on": "2024-03-10",
        "misuse": False,
    }
    assert _problem(client.get("/v1/loans/L404", headers=keys.header("all")), 404)


def test_the_distribution_is_the_letters_table(client: FlaskClient, keys: Keys) -> None:
    table = get(client, keys, "/v1/distribution")
    assert [d["district_id"] for d in table["districts"]] == ["D01", "D02"]
    assert table["distribution"] == get(client, keys, "/v1/report")["distribution"]
    assert get(client, keys, "/v1/distribution?org=HPN")["distribution"].keys() == {"HPN"}


# events ---------------------------------------------------------------------------------------------
def test_invalid_events_are_400_with_every_field_named(client: FlaskClient, keys: Keys) -> None:
    good = loan("L99", "2024-03-30")
    bad = loan("L98", "2024-02-30", amount=0)
    body = _problem(client.post("/v1/events", json=[good, bad, 7], headers=keys.header("all")), 400)
    assert body["type"].endswith("/invalid-event") and body["detail"] == "2 of 3 events are invalid; none was sent"
    assert [e["field"] for e in body["errors"]] == ["1.amount", "1.occurred_at", "2.message"]
    single = _problem(client.post("/v1/events", json={**good, "borrower": "x"}, headers=keys.header("all")), 400)
    assert [e["field"] for e in single["errors"]] == ["borrower"]
    for payload in (b"{", b"[]", b'"text"'):
        errors = _problem(
            client.post("/v1/events", data=payload, headers=keys.header("all"), content_type="application/json"), 400
        )
        assert errors["errors"][0]["field"] == "body"
    assert _problem(client.post("/v1/events", data="x", headers=keys.header("all")), 415)


def test_an_event_dated_after_today_is_400_naming_occurred_at(client: FlaskClient, keys: Keys) -> None:
    """Whatever the key's scope: one mistyped year would move the province's clock for good."""
    typo = loan("L97", "2203-03-30")
    body = _problem(client.post("/v1/events", json=typo, headers=keys.header("all")), 400)
    assert [e["field"] for e in body["errors"]] == ["occurred_at"]
    assert body["errors"][0]["detail"].startswith("after today (2203-03-30;")


def _refused(client: FlaskClient, keys: Keys, key: str, events: Any, status: int) -> list[dict[str, str]]:
    body = _problem(client.post("/v1/events", json=events, headers=keys.header(key)), status)
    assert body["type"].endswith("/forbidden" if status == 403 else "/conflict")
    assert body["detail"].endswith("none was sent")
    errors: list[dict[str, str]] = body["errors"]
    return errors


def test_events_outside_the_keys_area_are_403_and_nothing_is_sent(client: FlaskClient, keys: Keys) -> None:
    inside, outside, clock = loan("L95", "2024-03-30"), loan("L97", "2024-03-30", **D02), tick("2024-04-01")
    errors = _refused(client, keys, "d01", [inside, outside, clock], 403)
    assert [e["field"] for e in errors] == ["1.commune_id", "2.type"]


def test_a_loan_of_another_district_cannot_be_inspected_under_ones_own(client: FlaskClient, keys: Keys) -> None:
    """The attack: a district key names its own district, and another district's loan."""
    visit = inspect("L8", "2024-03-30")  # D01/C0001/HND, but L8 is D02's
    (error,) = _refused(client, keys, "d01", visit, 403)
    assert error == {
        "field": "loan_id",
        "detail": "loan L8 belongs to C0101/HND in D02, outside the area of this API key",
    }
    misuse = periodic("G1", "2024-03-30", loan_id="L9", result="misuse")  # G1 is D01's, L9 is D02's
    assert [e["field"] for e in _refused(client, keys, "d01", misuse, 403)] == ["loan_id"]


def test_a_known_commune_cannot_be_moved_into_the_keys_district(client: FlaskClient, keys: Keys) -> None:
    """The attack: registering a group in a known commune of another district under one's own district."""
    moved = group("G99", "2024-03-01", district_id="D01", commune_id="C0101")  # C0101 is D02's
    (error,) = _refused(client, keys, "d01", moved, 403)
    assert error["field"] == "commune_id" and "C0101 belongs to D02" in error["detail"]


def test_a_scoped_key_cannot_introduce_a_new_commune_or_date_far_back(client: FlaskClient, keys: Keys) -> None:
    (new,) = _refused(client, keys, "d01", group("G98", "2024-03-01", commune_id="C0999"), 403)
    assert new["field"] == "commune_id" and "never seen" in new["detail"]
    (old,) = _refused(client, keys, "d01", group("G97", "2000-01-01"), 403)
    assert old["field"] == "occurred_at" and "365 days before the clock T (2024-03-31)" in old["detail"]


def test_an_id_of_another_unit_in_the_keys_area_is_a_409_conflict(client: FlaskClient, keys: Keys) -> None:
    repayment = repay("L1", "2024-03-30", principal=100, org="HPN")  # L1 is C0001/HND's
    (error,) = _refused(client, keys, "all", repayment, 409)
    assert error == {
        "field": "loan_id",
        "detail": "loan L1 belongs to C0001/HND in D01, not of C0001/HPN as this event says",
    }
    (district,) = _refused(client, keys, "all", group("G96", "2024-03-01", district_id="D02"), 409)  # C0001 is D01's
    assert district["field"] == "commune_id"


def test_an_event_id_the_store_holds_with_other_content_is_a_409(client: FlaskClient, keys: Keys) -> None:
    applied = next(event for event in EVENTS if event["type"] == "loan.disbursed" and event["loan_id"] == "L2")
    changed = {**applied, "amount": applied["amount"] + 1}
    (error,) = _refused(client, keys, "all", changed, 409)
    assert error["field"] == "event_id" and applied["event_id"] in error["detail"]
    errors = _refused(client, keys, "all", [loan("L96", "2024-03-30"), changed], 409)
    assert [e["field"] for e in errors] == ["1.event_id"]
    twice = [loan("L96", "2024-03-30", event_id="new-1"), loan("L94", "2024-03-30", event_id="new-1")]
    assert [e["field"] for e in _refused(client, keys, "all", twice, 409)] == ["1.event_id"]
    same = client.post("/v1/events", json=applied, headers=keys.header("all"))  # a duplicate: on to Kafka
    assert _problem(same, 503)["type"].endswith("/kafka-unavailable")


def test_the_provinces_key_may_introduce_a_commune_and_correct_the_past(client: FlaskClient, keys: Keys) -> None:
    for event in (group("G95", "2024-03-01", commune_id="C0999"), group("G94", "2000-01-01")):
        response = client.post("/v1/events", json=event, headers=keys.header("all"))
        assert _problem(response, 503)["type"].endswith("/kafka-unavailable")  # admitted: only Kafka is missing


def test_a_scoped_key_that_calls_too_fast_gets_429_and_the_provinces_key_does_not(province: Province) -> None:
    client = _app(province, api_scoped_rate=5).test_client()
    answers = [client.get("/v1/distribution", headers=province.keys.header("d01")) for _ in range(30)]
    statuses = [response.status_code for response in answers]
    assert statuses[:10] == [200] * 10  # a burst of twice the rate
    refused = [response for response in answers if response.status_code == 429]
    assert len(refused) >= 15 and int(refused[0].headers["Retry-After"]) >= 1
    assert _problem(refused[0], 429)["type"].endswith("/too-many-requests")
    assert {client.get("/v1/distribution", headers=province.keys.header("all")).status_code for _ in range(30)} == {200}


def test_a_past_month_ends_answer_is_read_once_per_area(province: Province, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored report is decompressed and parsed once, not per request: fifteen requests a second of them made
    every other caller wait."""
    from uythac.adapters.sql import queries

    reads: list[date] = []
    read = queries.stored_report
    monkeypatch.setattr(
        queries, "stored_report", lambda connection, as_of: reads.append(as_of) or read(connection, as_of)
    )
    client = _app(province).test_client()
    for key in ("all", "all", "d01", "d01", "all"):
        for path in (f"/v1/report?as_of={MONTH_END}", f"/v1/distribution?as_of={MONTH_END}"):
            assert client.get(path, headers=province.keys.header(key)).status_code == 200
    assert reads == [MONTH_END] * 4  # report and table, for two areas
    assert client.get("/v1/report?as_of=2024-01-15", headers=province.keys.header("all")).status_code == 404


def test_kafka_down_is_503(client: FlaskClient, keys: Keys) -> None:
    response = client.post("/v1/events", json=loan("L96", "2024-03-30"), headers=keys.header("c0001"))
    assert _problem(response, 503)["type"].endswith("/kafka-unavailable")
    assert response.headers["Retry-After"] == "5"


# health, metrics, documents -------------------------------------------------------------------------
def test_readiness_names_what_is_wrong(province: Province, client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    body = _problem(client.get("/readyz"), 503)
    assert {e["field"] for e in body["errors"]} == {"worker_heartbeat", "worker_lag", "clock"}
    assert body["checks"]["store"] == {"ok": True, "detail": "the store reads"}
    store = Store.at(province.db)
    try:
        with store.unit_of_work() as uow:  # two workers: one alive, one silent since long ago
            uow.beat("worker-1", 3, time.time())
            uow.beat("worker-2", 5000, time.time() - 3600)
        ready = _app(province, api_ready_clock_days=0).test_client().get("/readyz")
        assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
        checks = ready.get_json()["checks"]
        assert checks["worker_lag"]["detail"] == "the workers are 3 messages behind the events topic (limit 10000)"
        assert checks["worker_heartbeat"]["detail"].endswith("; 1 alive")
    finally:
        with store.unit_of_work() as uow:
            for worker in ("worker-1", "worker-2"):
                for key in ("worker_heartbeat:", "worker_lag:"):
                    uow.connection.exec_driver_sql(f"DELETE FROM meta WHERE key = '{key}{worker}'")
        store.close()


def test_metrics_count_requests_and_read_the_store(client: FlaskClient, keys: Keys) -> None:
    hpn = get(client, keys, "/v1/distribution")["distribution"]["HPN"]
    metrics.worker().clock_lag.set(86400)  # a worker in the same process: its series are not the API's
    text = client.get("/metrics").get_data(as_text=True)
    assert "uythac_clock_lag_seconds" not in text and "process_cpu_seconds_total" in text
    assert 'uythac_api_request_seconds_count{method="GET",route="/v1/distribution",status="200"}' in text
    assert 'uythac_open_flags{district_id="D01"} 3.0' in text and 'uythac_open_flags{district_id="D02"} 1.0' in text
    duties = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("uythac_duties{")
    }
    assert duties['uythac_duties{district_id="D01",duty="new_loan",status="missed"}'] == 3  # the open flags
    assert duties['uythac_duties{district_id="D01",duty="new_loan",status="due_soon"}'] == 1  # L4
    assert duties['uythac_duties{district_id="D01",duty="new_loan",status="pending"}'] == 1  # L3: all not yet due
    assert duties['uythac_duties{district_id="D01",duty="inactive_loan",status="pending"}'] == 1  # L1
    assert duties['uythac_duties{district_id="D01",duty="inactive_loan",status="missed"}'] == 0
    assert duties['uythac_duties{district_id="D02",duty="group_of_year",status="pending"}'] == 1  # G4
    assert len(duties) == 2 * 6
    units = [line for line in text.splitlines() if line.startswith("uythac_units{")]
    for rating, count in hpn.items():  # by district, org and class: summed over districts, the table
        assert (
            sum(float(line.split()[-1]) for line in units if f'class="{rating}"' in line and 'org="HPN"' in line)
            == count
        )
    assert any('district_id="D02"' in line and line.endswith(" 1.0") for line in units)
    clock = next(line for line in text.splitlines() if line.startswith("uythac_store_clock_timestamp_seconds "))
    assert float(clock.split()[1]) == datetime(2024, 3, 31, tzinfo=VIETNAM).timestamp()


def test_the_openapi_document_and_its_page(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/events",
        "/v1/report",
        "/v1/distribution",
        "/v1/units",
        "/v1/units/{commune_id}/{org}",
        "/v1/communes/{commune_id}",
        "/v1/flags",
        "/v1/worklist",
        "/v1/loans/{loan_id}",
    }
    listed = document["paths"]["/v1/worklist"]["get"]["responses"]["200"]
    assert "text/csv" in listed["content"] and listed["headers"]["X-Total-Count"]["$ref"].endswith("/CsvTotal")
    assert "\\Z" not in client.get("/openapi.json").get_data(as_text=True)
    page = client.get("/docs").get_data(as_text=True)
    assert (
        'href="openapi.json"' in page and "/v1/units/{commune_id}/{org}" in page and 'id="problem-no-snapshot"' in page
    )


def test_cached_answers_follow_the_next_batch(tmp_path: Path, province: Province) -> None:
    """The report and the table are kept per store version: a batch the worker commits shows at once."""
    db = _in_date_order(province.new_store())
    app = _app(Province(db, province.keys, province.month_end, province.new_store)).test_client()
    before = get(app, province.keys, "/v1/report")
    assert get(app, province.keys, "/v1/report") == before  # the kept body
    table = get(app, province.keys, "/v1/distribution")
    listed = get(app, province.keys, "/v1/units?org=DTN")
    assert get(app, province.keys, "/v1/units?org=DTN", "d01") == listed  # D01 holds every unit listed
    replay_into(db, [group("G9", "2023-01-01", org="DTN"), loan("L99", "2024-03-30", group_id="G9", org="DTN")])
    after = get(app, province.keys, "/v1/report")
    assert after != before and after == json.loads(report.render(report_at(db)))
    assert get(app, province.keys, "/v1/distribution") != table
    assert get(app, province.keys, "/v1/units?org=DTN")["total"] == listed["total"] + 1
    assert get(app, province.keys, "/v1/units?org=DTN", "nowhere")["total"] == 0  # its own area, not a kept page


def test_kept_bodies_are_bounded_by_bytes() -> None:
    bodies, made = Bodies(10), []

    def make(body: bytes) -> Callable[[], bytes]:
        return lambda: made.append(body) or body

    for key in "abcde":  # 10 bytes: all kept, however many
        bodies.get(key, make(b"xx"))
    assert bodies.get("a", make(b"again")) == b"xx"
    bodies.get("big", make(b"x" * 7))  # the oldest go until the bytes fit: b, c, d, e
    assert bodies.get("a", make(b"again")) == b"xx" and bodies.get("e", make(b"again")) == b"again"
    assert made == [b"xx"] * 5 + [b"x" * 7, b"again"] and bodies.size <= 10

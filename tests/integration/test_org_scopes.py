"""Keys that fit the associations: a scope naming an organization (`district:D01,org:HND`, `org:HPN`) sees that
organization's units, loans, flags, worklist and duties only, on every API endpoint, page and workbook; the key
commands (`uythac apikey`, `list`, `revoke`) and expiry. Over the API tests' province (see test_api.py)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api_support import Keys, write_keys
from tests.integration.test_api import EVENTS, MONTH_END
from tests.pages_support import sheet_rows, sign_in
from tests.pipeline import UYTHAC
from tests.support import inspect, replay_into
from uythac.core.dates import VIETNAM
from uythac.entrypoints.api import create_app
from uythac.entrypoints.api.auth import entry, load_keys, new_key, parse_scope
from uythac.settings import Settings

SCOPES = {"all": "all", "hnd-d01": "district:D01,org:HND", "hpn": "org:HPN", "hnd-c0001": "commune:C0001,org:HND"}
# what each org-scoped key must never see: the ids of the province that are not its organization's
HIDDEN = {
    "hnd-d01": re.compile(r"\b(L6|L8|L9|G2|G4|C0101|D02)\b"),
    "hpn": re.compile(r"\b(L[1-57-9]|G[134]|C0002|C0101|D02)\b"),
    "hnd-c0001": re.compile(r"\b(L[6-9]|G[2-4]|C0002|C0101|D02)\b"),
}
ORG = {"hnd-d01": "HND", "hpn": "HPN", "hnd-c0001": "HND"}
# every GET route an API key or a signed-in officer reads, with the addresses that exercise it (for each key)
ROUTES: dict[str, list[str]] = {
    "/v1/report": ["/v1/report", f"/v1/report?as_of={MONTH_END}"],
    "/v1/distribution": ["/v1/distribution", f"/v1/distribution?as_of={MONTH_END}"],
    "/v1/units": ["/v1/units", "/v1/units?commune_id=C0001&sort=score"],
    "/v1/units/<commune_id>/<org>": ["/v1/units/C0001/HND", "/v1/units/C0001/HPN", "/v1/units/C0002/HND"],
    "/v1/communes/<commune_id>": ["/v1/communes/C0001", "/v1/communes/C0002"],
    "/v1/flags": ["/v1/flags", "/v1/flags?district_id=D01"],
    "/v1/worklist": ["/v1/worklist?within_days=30"],
    "/v1/loans/<loan_id>": ["/v1/loans/L1", "/v1/loans/L6", "/v1/loans/L7"],
    "/trang/": ["/trang/"],
    "/trang/tinh": ["/trang/tinh"],
    "/trang/tinh.xlsx": ["/trang/tinh.xlsx"],
    "/trang/huyen/<district_id>": ["/trang/huyen/D01"],
    "/trang/xa/<commune_id>/<org>": ["/trang/xa/C0001/HND", "/trang/xa/C0001/HPN"],
    "/trang/mon-vay/<loan_id>": ["/trang/mon-vay/L1", "/trang/mon-vay/L6"],
    "/trang/danh-sach": ["/trang/danh-sach?within_days=30"],
    "/trang/danh-sach.xlsx": ["/trang/danh-sach.xlsx?within_days=30"],
    "/trang/qua-han.xlsx": ["/trang/qua-han.xlsx"],
}
OPEN = {"/trang/dang-nhap", "/trang/<path:unknown>", "/trang/static/<path:filename>", "/static/<path:filename>"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Keys]:
    directory = tmp_path_factory.mktemp("orgs")
    replay_into(directory / "province.db", sorted(EVENTS, key=lambda event: event["occurred_at"]))
    return directory / "province.db", write_keys(directory, SCOPES)


def _client(setup: tuple[Path, Keys]) -> FlaskClient:
    db, keys = setup
    values = {"api_keys_file": str(keys.path), "kafka_bootstrap": "127.0.0.1:1", "pages_secret": "s" * 32}
    return create_app(Settings(db=str(db), **values)).test_client()


@pytest.fixture(scope="module")
def client(setup: tuple[Path, Keys]) -> Iterator[FlaskClient]:
    yield _client(setup)


def _text(response: Any) -> str:
    """What a caller sees in an answer: JSON, HTML, CSV, or a workbook's cells."""
    if response.mimetype.endswith("spreadsheetml.sheet"):
        return "\n".join(" ".join(str(cell) for cell in row) for row in sheet_rows(response.data))
    return str(response.get_data(as_text=True))


def _orgs(value: Any) -> set[str]:
    """Every `org` a JSON answer names, at any depth."""
    found: set[str] = set()
    if isinstance(value, dict):
        found = {value["org"]} if isinstance(value.get("org"), str) else set()
        value = list(value.values())
    if isinstance(value, list):
        found = found.union(*map(_orgs, value))
    return found


def test_every_route_a_key_reads_is_covered_here(client: FlaskClient) -> None:
    """A new endpoint or page must be added to ROUTES, and so checked for what an org-scoped key sees."""
    rules = {
        rule.rule
        for rule in client.application.url_map.iter_rules()
        if "GET" in rule.methods and rule.rule.startswith(("/v1/", "/trang/", "/static/"))
    }
    assert rules - OPEN == set(ROUTES)


@pytest.mark.parametrize("key", sorted(HIDDEN))
def test_an_org_scoped_key_sees_its_organization_only_everywhere(
    setup: tuple[Path, Keys], client: FlaskClient, key: str
) -> None:
    keys = setup[1]
    seen = 0
    for route, paths in ROUTES.items():
        for path in paths:
            if route.startswith("/v1/"):
                response = client.get(path, headers=keys.header(key))
                if response.status_code == 200:
                    assert _orgs(response.get_json()) <= {ORG[key]}, path
                    table = response.get_json().get("distribution", {})
                    assert all(not any(table[org].values()) for org in table if org != ORG[key]), path
            else:
                officer = _client(setup)
                sign_in(officer, keys.keys[key])
                response = officer.get(path, follow_redirects=True)
            assert response.status_code in (200, 404), (path, response.status_code)
            if response.status_code == 200:  # a 404 names what was asked for, and no more
                assert not HIDDEN[key].search(_text(response)), (path, HIDDEN[key].search(_text(response)))
                seen += 1
    assert seen > len(ROUTES)


@pytest.mark.parametrize("page", ["/trang/danh-sach", "/trang/huyen/D01"])
def test_an_org_scoped_officer_is_offered_its_own_organization_only(setup: tuple[Path, Keys], page: str) -> None:
    officer = _client(setup)
    sign_in(officer, setup[1].keys["hnd-d01"])
    offered = re.findall(r'<option value="(HND|HPN|HCCB|DTN)"', officer.get(page).get_data(as_text=True))
    assert offered == ["HND"]
    everyone = _client(setup)
    sign_in(everyone, setup[1].keys["all"])
    assert len(re.findall(r'<option value="(HND|HPN|HCCB|DTN)"', everyone.get(page).get_data(as_text=True))) == 4


def test_org_scoped_answers_hold_their_own_units(client: FlaskClient, setup: tuple[Path, Keys]) -> None:
    keys = setup[1]

    def units(key: str) -> list[tuple[str, str]]:
        items = client.get("/v1/units", headers=keys.header(key)).get_json()["items"]
        return [(u["commune_id"], u["org"]) for u in items]

    assert units("hnd-d01") == [("C0001", "HND"), ("C0002", "HND")]
    assert units("hpn") == [("C0001", "HPN")]
    assert units("hnd-c0001") == [("C0001", "HND")]
    assert client.get("/v1/units/C0001/HPN", headers=keys.header("hnd-d01")).status_code == 404
    assert client.get("/v1/units/C0001/HPN", headers=keys.header("hpn")).status_code == 200
    assert client.get("/v1/loans/L6", headers=keys.header("hnd-d01")).status_code == 404
    flags = client.get("/v1/flags", headers=keys.header("hnd-d01")).get_json()["items"]
    assert [f["loan_id"] for f in flags] == ["L1", "L5", "L7"]
    report = client.get("/v1/report", headers=keys.header("hpn")).get_json()
    assert [(u["commune_id"], u["org"]) for u in report["units"]] == [("C0001", "HPN")] and report["flags"] == []


def test_an_org_scoped_key_cannot_send_another_organizations_events(
    client: FlaskClient, setup: tuple[Path, Keys]
) -> None:
    response = client.post("/v1/events", json=inspect("L1", "2024-03-30"), headers=setup[1].header("hpn"))
    assert response.status_code == 403
    assert response.get_json()["errors"][0]["field"] == "org"
    other = inspect("L6", "2024-03-30", org="HPN")
    refused = client.post("/v1/events", json=other, headers=setup[1].header("hnd-d01"))
    assert refused.status_code == 403 and refused.get_json()["errors"][0]["field"] == "org"


def test_scopes_name_a_place_and_an_organization() -> None:
    assert parse_scope("district:D01,org:HND").org == "HND"
    assert parse_scope("org:HPN").district_id is None
    for wrong in ("org:XYZ", "district:D01,commune:C0001", "org:HND,org:HPN", "district:D01,", "district"):
        with pytest.raises(ValueError, match="scope"):
            parse_scope(wrong)


def test_an_expired_key_is_401_saying_so_and_signs_no_officer_in(tmp_path: Path, setup: tuple[Path, Keys]) -> None:
    today = datetime.now(VIETNAM).date()
    old, fresh = new_key(), new_key()
    path = tmp_path / "keys.yaml"
    lines = entry("old", "all", old, today - timedelta(days=1)) + entry("fresh", "all", fresh, today)
    path.write_text("keys:\n" + lines, encoding="utf-8")
    values = {"api_keys_file": str(path), "kafka_bootstrap": "127.0.0.1:1", "pages_secret": "s" * 32}
    client = create_app(Settings(db=str(setup[0]), **values)).test_client()
    refused = client.get("/v1/units", headers={"Authorization": f"Bearer {old}"})
    assert refused.status_code == 401 and refused.mimetype == "application/problem+json"
    assert "expired on" in refused.get_json()["detail"]
    assert client.get("/v1/units", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200  # its last day
    assert sign_in(client, old).status_code == 401
    assert sign_in(client, fresh).status_code == 303


def _uythac(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([UYTHAC, "apikey", *args], capture_output=True, text=True, check=False)


def test_apikey_adds_lists_and_revokes_keys_in_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.yaml")
    made = _uythac("--name", "hnd-d01", "--scope", "district:D01,org:HND", "--days", "30", "--keys-file", path)
    assert made.returncode == 0, made.stderr
    key = made.stdout.splitlines()[0]
    assert _uythac("--name", "tinh", "--scope", "all", "--expires", "2027-06-30", "--keys-file", path).returncode == 0
    past = _uythac("--name", "old", "--scope", "all", "--expires", "2020-01-01", "--keys-file", path)
    assert past.returncode == 2 and "before today" in past.stderr
    again = _uythac("--name", "tinh", "--scope", "all", "--keys-file", path)
    assert again.returncode == 2 and "configured already" in again.stderr
    listed = _uythac("list", "--keys-file", path)
    expires = (datetime.now(VIETNAM).date() + timedelta(days=29)).isoformat()
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [row[:3] for row in rows] == [["hnd-d01", "district:D01,org:HND", expires], ["tinh", "all", "2027-06-30"]]
    hashed = next(iter(load_keys(path)))
    assert hashed not in listed.stdout and key not in listed.stdout and rows[0][3] == hashed[:8] + "…"
    revoked = _uythac("revoke", "hnd-d01", "--keys-file", path)
    assert revoked.returncode == 0 and "SIGHUP" in revoked.stdout
    assert [k.name for k in load_keys(path).values()] == ["tinh"]
    missing = _uythac("revoke", "hnd-d01", "--keys-file", path)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no key named hnd-d01" in missing.stderr
    assert _uythac("list").returncode == 2

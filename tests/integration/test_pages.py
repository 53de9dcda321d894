"""The officers' pages on Flask's test client, over the API tests' province (replayed; see test_api.py): sign-in,
CSRF, the slowing of failed sign-ins, scopes by URL, and every page's and workbook's numbers against the API's."""

from __future__ import annotations

import io
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import itsdangerous.timed
import openpyxl
import pytest
from flask.testing import FlaskClient

from tests.api_support import Keys, write_keys
from tests.integration.test_api import EVENTS
from tests.pages_support import csrf, sheet_rows, sign_in
from tests.support import replay_into
from uythac.core.scorecard import CLASSES
from uythac.entrypoints.api import create_app
from uythac.entrypoints.pages.words import DUTIES, STATUSES
from uythac.settings import Settings

PAGES = ["/trang/tinh", "/trang/huyen/D01", "/trang/xa/C0001/HND", "/trang/mon-vay/L1", "/trang/danh-sach"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Keys]:
    directory = tmp_path_factory.mktemp("pages")
    replay_into(directory / "province.db", sorted(EVENTS, key=lambda event: event["occurred_at"]))
    return directory / "province.db", write_keys(directory)


def _client(setup: tuple[Path, Keys], **settings: Any) -> FlaskClient:
    db, keys = setup
    values = {"api_keys_file": str(keys.path), "kafka_bootstrap": "127.0.0.1:1", "pages_secret": "s" * 32}
    return create_app(Settings(db=str(db), **(values | settings))).test_client()


@pytest.fixture()
def client(setup: tuple[Path, Keys]) -> FlaskClient:
    return _client(setup)


@pytest.fixture(scope="module")
def keys(setup: tuple[Path, Keys]) -> Keys:
    return setup[1]


def api(client: FlaskClient, keys: Keys, path: str, key: str = "all") -> Any:
    response = client.get(path, headers=keys.header(key))
    assert response.status_code == 200, response.data
    return response.get_json()


def page(client: FlaskClient, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code)
    assert response.content_type == "text/html; charset=utf-8"
    return response.get_data(as_text=True)


def _vi(text: str) -> float:
    """A number as the Vietnamese pages write it (1.234,5) read back."""
    return float(text.replace(".", "").replace(",", "."))


# sign-in ------------------------------------------------------------------------------------------------
def test_every_page_asks_for_a_sign_in_first(client: FlaskClient) -> None:
    for path in ["/trang/", *PAGES, "/trang/danh-sach.xlsx"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/trang/dang-nhap?next=")


def test_signing_in_gives_a_signed_http_only_cookie_and_signing_out_ends_it(client: FlaskClient, keys: Keys) -> None:
    form = page(client, "/trang/dang-nhap")
    assert '<html lang="vi">' in form and '<label for="key">Khóa truy cập</label>' in form
    response = sign_in(client, keys.keys["d01"], "/trang/danh-sach")
    assert response.status_code == 303 and response.headers["Location"] == "/trang/danh-sach"
    cookie = response.headers["Set-Cookie"]
    assert keys.keys["d01"] not in cookie  # the key's hash, signed; never the key
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/trang", "Expires="):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback (`make run`); Secure behind HTTPS, below
    assert "huyện D01" in page(client, "/trang/danh-sach")
    assert client.get("/trang/").headers["Location"] == "/trang/huyen/D01"
    out = client.post("/trang/dang-xuat", data={"csrf": csrf(client, "/trang/danh-sach")})
    assert out.status_code == 303
    assert client.get("/trang/danh-sach").status_code == 302


def test_a_session_ends_at_its_lifetime(setup: tuple[Path, Keys], keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(setup, pages_session_minutes=30)
    sign_in(client, keys.keys["all"])
    assert client.get("/trang/tinh").status_code == 200
    later = time.time() + 31 * 60
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: later)  # the signature's age, checked on reading
    assert client.get("/trang/tinh").status_code == 302


def test_the_cookie_is_secure_behind_https(client: FlaskClient, keys: Keys) -> None:
    token = csrf(client)
    response = client.post(
        "/trang/dang-nhap", data={"csrf": token, "key": keys.keys["all"]}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_cookie_is_no_key_for_the_api_and_a_forged_one_is_refused(
    client: FlaskClient, setup: tuple[Path, Keys], keys: Keys
) -> None:
    sign_in(client, keys.keys["all"])
    assert client.get("/v1/units").status_code == 401  # the API takes bearer keys only
    other = _client(setup, pages_secret="t" * 32)
    cookie = client.get_cookie("uythac_trang", path="/trang")
    assert cookie is not None
    other.set_cookie("uythac_trang", cookie.value, path="/trang")
    assert other.get("/trang/tinh").status_code == 302  # signed with another secret: not a session


def test_forms_without_the_csrf_token_are_refused(client: FlaskClient, keys: Keys) -> None:
    assert client.post("/trang/dang-nhap", data={"key": keys.keys["all"]}).status_code == 400
    assert client.post("/trang/dang-nhap", data={"key": keys.keys["all"], "csrf": "x" * 43}).status_code == 400
    sign_in(client, keys.keys["all"])
    assert client.post("/trang/dang-xuat").status_code == 400
    assert client.get("/trang/tinh").status_code == 200  # still signed in


def test_a_bad_key_is_refused_and_repeated_failures_must_wait(
    client: FlaskClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    def attempt(key: str) -> Any:
        return client.post(
            "/trang/dang-nhap", data={"csrf": csrf(client), "key": key}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
        )

    for _ in range(5):
        refused = attempt("uythac_wrong")
        assert refused.status_code == 401 and "Khóa không đúng." in refused.get_data(as_text=True)
    attempt("uythac_wrong")  # the sixth failure: 2 s to wait
    waiting = attempt(keys.keys["all"])  # even the right key, until then
    assert waiting.status_code == 429 and int(waiting.headers["Retry-After"]) >= 1
    other = client.post("/trang/dang-nhap", data={"csrf": csrf(client), "key": keys.keys["all"]})
    assert other.status_code == 303  # another address is not slowed
    refused = [r for r in caplog.records if r.getMessage() == "pages sign-in refused"]
    assert len(refused) == 6 and all(r.address == "10.1.2.3" for r in refused)  # type: ignore[attr-defined]
    assert not any("uythac_wrong" in r.getMessage() + str(vars(r)) for r in caplog.records)  # never a key


def test_the_next_page_after_sign_in_stays_on_this_site(client: FlaskClient, keys: Keys) -> None:
    for target in ["https://evil.example/", "//evil.example/trang/", "/v1/report", "/trang\\..\\x"]:
        assert sign_in(client, keys.keys["all"], target).headers["Location"] == "/trang/"


def test_pages_are_vietnamese_first_with_an_english_switch(client: FlaskClient, keys: Keys) -> None:
    sign_in(client, keys.keys["all"])
    vietnamese = page(client, "/trang/xa/C0001/HND")
    assert '<html lang="vi">' in vietnamese and "31/03/2024" in vietnamese and ">38,33<" in vietnamese
    switched = client.post(
        "/trang/ngon-ngu", data={"csrf": csrf(client, "/trang/tinh"), "lang": "en", "next": "/trang/tinh"}
    )
    assert switched.headers["Location"] == "/trang/tinh"
    english = page(client, "/trang/xa/C0001/HND")
    assert '<html lang="en">' in english and ">38.33<" in english and "Farmers&#39; Union" in english
    assert "31/03/2024" in english


def test_pages_are_not_kept_and_run_no_script(client: FlaskClient, keys: Keys) -> None:
    sign_in(client, keys.keys["all"])
    for path in PAGES:
        response = client.get(path)
        assert response.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "<script" not in response.get_data(as_text=True)
    css = client.get("/trang/static/pages.css")
    assert css.status_code == 200 and b"@media print" in css.data
    css.close()


# scopes ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("d01", "/trang/huyen/D02"),
        ("d01", "/trang/tinh"),
        ("d01", "/trang/tinh.xlsx"),
        ("d01", "/trang/xa/C0101/HND"),
        ("d01", "/trang/mon-vay/L8"),
        ("c0001", "/trang/huyen/D01"),
        ("c0001", "/trang/xa/C0002/HND"),
        ("all", "/trang/huyen/D99"),
        ("all", "/trang/xa/C0001/DTN"),
        ("all", "/trang/no-such-page"),
    ],
)
def test_another_area_by_url_is_404(client: FlaskClient, keys: Keys, key: str, path: str) -> None:
    sign_in(client, keys.keys[key])
    assert "Không tìm thấy" in page(client, path, 404)


def test_a_commune_officer_lands_on_the_worklist_with_links_to_the_communes_units(
    client: FlaskClient, keys: Keys
) -> None:
    sign_in(client, keys.keys["c0001"])
    assert client.get("/trang/").headers["Location"] == "/trang/danh-sach"
    html = page(client, "/trang/danh-sach")
    assert 'href="/trang/xa/C0001/HND">Hội Nông dân</a>' in html and 'href="/trang/xa/C0001/HPN">Hội Phụ nữ</a>' in html


def test_lists_and_workbooks_keep_to_the_area(client: FlaskClient, keys: Keys) -> None:
    sign_in(client, keys.keys["d01"])
    communes = set(re.findall(r'href="/trang/xa/(C\d+)/', page(client, "/trang/danh-sach")))
    assert communes == {"C0001", "C0002"}
    assert "C0101" not in page(client, "/trang/danh-sach?district_id=D02")
    rows = sheet_rows(client.get("/trang/danh-sach.xlsx?district_id=D02").data)
    assert rows == []
    assert {row[2] for row in sheet_rows(client.get("/trang/qua-han.xlsx").data)} == {"C0001", "C0002"}


def test_bad_parameters_are_400_pages(client: FlaskClient, keys: Keys) -> None:
    sign_in(client, keys.keys["all"])
    assert "as_of" in page(client, "/trang/tinh?as_of=2024-2-29", 400)
    assert "duty" in page(client, "/trang/danh-sach?duty=nap", 400)
    assert "sort" in page(client, "/trang/huyen/D01?sort=name", 400)
    page(client, "/trang/tinh?as_of=2024-01-15", 404)  # no month end kept for that day


# the same numbers as the API -----------------------------------------------------------------------------
def test_the_province_page_and_workbook_show_the_apis_distribution(client: FlaskClient, keys: Keys) -> None:
    sign_in(client, keys.keys["all"])
    for as_of in ("", "2024-02-29"):
        query = f"?as_of={as_of}" if as_of else ""
        table = api(client, keys, f"/v1/distribution{query}")
        html = page(client, f"/trang/tinh{query}")
        shown = {
            (district, org, key): int(count)
            for district, row in re.findall(r'<tr data-district="([^"]+)">(.*?)</tr>', html, re.S)
            for org, key, count in re.findall(r'data-org="(\w+)" data-class="(\w+)">([\d.]*)<', row)
            if count
        }
        expected = {
            (d["district_id"], org, key): counts[key]
            for d in table["districts"]
            for org, counts in d["distribution"].items()
            for key in CLASSES
        } | {("total", org, key): counts[key] for org, counts in table["distribution"].items() for key in CLASSES}
        assert shown == expected
        rows = sheet_rows(client.get(f"/trang/tinh.xlsx{query}").data)
        assert {(r[0], r[1]): r[2:6] for r in rows if r[0] != "Tổng cộng"} == {
            (d["district_id"], org): [counts[key] for key in CLASSES]
            for d in table["districts"]
            for org, counts in d["distribution"].items()
        }
        assert "<svg" in html


def test_the_district_page_shows_the_apis_units_and_worklist(client: FlaskClient, keys: Keys) -> None:
    sign_in(client, keys.keys["d01"])
    units = api(client, keys, "/v1/units?district_id=D01", "d01")["items"]
    due = api(client, keys, "/v1/worklist?district_id=D01&duty=new_loan&status=due_soon", "d01")["items"]
    due_by_unit = Counter((item["commune_id"], item["org"]) for item in due)
    html = page(client, "/trang/huyen/D01")
    shown = {
        unit: dict(re.findall(r'data-field="(\w+)"[^>]*>([^<]*)<', row))
        for unit, row in re.findall(r'<tr data-unit="([^"]+)">(.*?)</tr>', html, re.S)
    }
    assert list(shown) == [f"{u['commune_id']}/{u['org']}" for u in units]
    for unit in units:
        fields = shown[f"{unit['commune_id']}/{unit['org']}"]
        assert _vi(fields["score"]) == unit["score"]
        assert int(fields["open_flags"]) == unit["open_flags"]
        assert int(fields["due_soon"]) == due_by_unit[unit["commune_id"], unit["org"]]
        for key, part in unit["components"].items():
            assert [_vi(text) for text in fields[key].split("/")] == [part["points"], part["max"]]
    by_score = page(client, "/trang/huyen/D01?sort=score&class=yeu")
    order = re.findall(r'<tr data-unit="([^"]+)">', by_score)
    weak = sorted((u for u in units if u["class"] == "yeu"), key=lambda u: (u["score"], u["commune_id"], u["org"]))
    assert order == [f"{u['commune_id']}/{u['org']}" for u in weak]


def test_the_unit_and_loan_pages_show_the_apis_answers(client: FlaskClient, keys: Keys) -> None:
    sign_in(client, keys.keys["c0001"])
    unit = api(client, keys, "/v1/units/C0001/HND", "c0001")
    html = page(client, "/trang/xa/C0001/HND")
    assert _vi(re.search(r'id="score">([^<]+)<', html).group(1)) == unit["score"]  # type: ignore[union-attr]
    assert all(e["vi"].replace("&", "&amp;") in html for e in unit["explanations"])
    assert unit["to_inspect"]["vi"].replace("&", "&amp;") in html
    assert re.findall(r'href="/trang/mon-vay/(\w+)"', html.split('id="flags"')[1].split("</table>")[0]) == [
        f["loan_id"] for f in unit["flags"]
    ]
    due = html.split('id="due"')[1].split("</table>")[0]
    assert re.findall(r"<td>(-?\d+)</td></tr>", due) == [str(d["days_left"]) for d in unit["due_soon"]]
    assert "<svg" in html  # the score at the kept month end
    loan = api(client, keys, "/v1/loans/L5", "c0001")
    shown = dict(re.findall(r'data-field="(\w+)">([^<]*)<', page(client, "/trang/mon-vay/L5")))
    assert shown["status"] == STATUSES[loan["status"]][0]
    assert shown["deadline"] == "02/03/2024" == "/".join(reversed(loan["deadline"].split("-")))
    assert shown["late_inspection_on"] == "10/03/2024" and loan["late_inspection_on"] == "2024-03-10"


def test_the_worklist_page_and_workbooks_list_the_apis_items(client: FlaskClient, keys: Keys) -> None:
    sign_in(client, keys.keys["all"])
    items = api(client, keys, "/v1/worklist?per_page=500")["items"]
    html = page(client, "/trang/danh-sach")
    assert re.findall(r'<tr class="s-(\w+)" data-id="([^"]+)" data-duty="(\w+)"', html) == [
        (i["status"], i["id"], i["duty"]) for i in items
    ]
    assert re.findall(r'data-field="days_left">(-?\d+)<', html) == [str(i["days_left"]) for i in items]
    rows = sheet_rows(client.get("/trang/danh-sach.xlsx").data)
    assert rows == [
        [
            DUTIES[i["duty"]][0], i["id"], i["district_id"], i["commune_id"], i["org"], i["opened_on"], i["deadline"],
            i["days_left"], STATUSES[i["status"]][0],
        ]
        for i in items
    ]  # fmt: skip
    flags = api(client, keys, "/v1/flags?per_page=500")["items"]
    assert sheet_rows(client.get("/trang/qua-han.xlsx").data) == [
        [
            f["loan_id"],
            f["district_id"],
            f["commune_id"],
            f["org"],
            f["disbursed_on"],
            f["deadline"],
            f["late_inspection_on"],
        ]
        for f in flags
    ]
    filtered = api(client, keys, "/v1/worklist?duty=group_of_year&commune_id=C0001")["items"]
    assert re.findall(
        r'data-id="([^"]+)"', page(client, "/trang/danh-sach?duty=group_of_year&commune_id=C0001&org=")
    ) == [i["id"] for i in filtered]


def test_workbooks_have_a_frozen_header_and_date_cells(client: FlaskClient, keys: Keys) -> None:
    sign_in(client, keys.keys["all"])
    response = client.get("/trang/danh-sach.xlsx")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="danh-sach-kiem-tra-2024-03-31')
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    sheet = book.worksheets[0]
    assert sheet.freeze_panes == "A2"
    assert [cell.value for cell in sheet[1]][:3] == ["Loại kiểm tra", "Mã", "Huyện"]
    assert sheet["G2"].is_date and sheet["G2"].number_format == "dd/mm/yyyy"
    assert sheet.column_dimensions["A"].width > 20


def test_the_worklist_pages_through_long_lists(setup: tuple[Path, Keys], keys: Keys) -> None:
    client = _client(setup, pages_per_page=2)
    sign_in(client, keys.keys["all"])
    total = api(client, keys, "/v1/worklist")["total"]
    seen = []
    for number in range(1, -(-total // 2) + 1):
        seen += re.findall(r'data-id="([^"]+)"', page(client, f"/trang/danh-sach?page={number}"))
    assert seen == [i["id"] for i in api(client, keys, "/v1/worklist?per_page=500")["items"]]

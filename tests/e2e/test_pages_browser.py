"""The officers' pages in a real browser: Debian's chromium driven by Playwright, against `uythac api` (gunicorn,
two workers) on loopback, over the API tests' province. Screenshots and the print PDF go to var/test-artifacts/pages
(git-ignored) for a person to look at."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.api_support import Keys, write_keys
from tests.integration.test_api import EVENTS
from tests.kafka_broker import free_ports
from tests.pages_support import sheet_rows
from tests.pipeline import UYTHAC
from tests.support import replay_into
from uythac.core.scorecard import CLASSES
from uythac.entrypoints.pages.words import DUTIES, STATUSES

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "pages"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [  # a closed network: nothing for the browser to fetch by itself, or it stalls
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PAGES = ["/trang/tinh", "/trang/huyen/D01", "/trang/xa/C0001/HND", "/trang/mon-vay/L5", "/trang/danh-sach"]


@dataclass
class Server:
    url: str
    keys: Keys

    def api(self, path: str, key: str = "all") -> Any:
        port = int(self.url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", path, headers=self.keys.header(key))
            response = connection.getresponse()
            assert response.status == 200
            return orjson.loads(response.read())
        finally:
            connection.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("pages-browser")
    replay_into(directory / "store.db", sorted(EVENTS, key=lambda event: event["occurred_at"]))
    keys = write_keys(directory)
    port, internal, kafka = free_ports(3)
    env = {
        **os.environ,
        "UYTHAC_DB": str(directory / "store.db"),
        "UYTHAC_API_BIND": f"127.0.0.1:{port}",
        "UYTHAC_API_INTERNAL_BIND": f"127.0.0.1:{internal}",
        "UYTHAC_API_WORKERS": "2",  # a session signed in one worker is read by the other (the master's secret)
        "UYTHAC_API_KEYS_FILE": str(keys.path),
        "UYTHAC_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka}",
        "UYTHAC_API_SCOPED_RATE": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("UYTHAC_PAGES_SECRET", None)
    log = directory / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen([UYTHAC, "api"], env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Server(f"http://127.0.0.1:{port}", keys)
    try:
        deadline = time.monotonic() + 30
        while not _up(port):
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text(errors="replace")[-3000:]


def _up(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, server: Server, key: str, target: str = "") -> None:
    page.goto(server.url + (target or "/trang/"))
    page.get_by_label("Khóa truy cập").fill(server.keys.keys[key])
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_officer_signs_in_and_out(page: Page, server: Server) -> None:
    page.goto(server.url + "/trang/")
    assert page.url.startswith(server.url + "/trang/dang-nhap")
    assert page.locator("html").get_attribute("lang") == "vi"
    shot(page, "sign-in")
    page.get_by_label("Khóa truy cập").fill("uythac_not-a-key")
    page.get_by_role("button", name="Đăng nhập").click()
    assert page.get_by_role("alert").inner_text() == "Khóa không đúng."
    page.get_by_label("Khóa truy cập").fill(server.keys.keys["all"])
    page.keyboard.press("Enter")  # the form by keyboard
    page.wait_for_url(server.url + "/trang/tinh")
    for _ in range(6):  # two workers: each reads the session the other signed
        page.reload()
        assert page.get_by_role("heading", level=1).inner_text().startswith("Xếp loại chất lượng ủy thác")
    shot(page, "province")
    page.get_by_role("button", name="Đăng xuất").click()
    page.wait_for_url(re.compile(r".*/trang/dang-nhap$"))
    page.goto(server.url + "/trang/tinh")
    assert "/trang/dang-nhap" in page.url


def test_a_district_officer_cannot_open_another_district_by_editing_the_url(page: Page, server: Server) -> None:
    sign_in(page, server, "d01")
    assert page.url == server.url + "/trang/huyen/D01"
    for path in ["/trang/huyen/D02", "/trang/tinh", "/trang/xa/C0101/HND", "/trang/mon-vay/L8"]:
        response = page.goto(server.url + path)
        assert response is not None and response.status == 404
        assert page.get_by_role("heading", level=1).inner_text() == "Không tìm thấy (404)"
    shot(page, "not-found")


def test_each_pages_numbers_are_the_apis(page: Page, server: Server) -> None:
    sign_in(page, server, "all")
    table = server.api("/v1/distribution")
    page.goto(server.url + "/trang/tinh")
    for district in table["districts"]:
        for org, counts in district["distribution"].items():
            row = page.locator(f'tr[data-district="{district["district_id"]}"]')
            cells = [row.locator(f'td[data-org="{org}"][data-class="{key}"]').inner_text() for key in CLASSES]
            assert cells == [str(counts[key]) for key in CLASSES]
    units = server.api("/v1/units?district_id=D01")["items"]
    page.goto(server.url + "/trang/huyen/D01")
    shot(page, "district")
    for unit in units:
        row = page.locator(f'tr[data-unit="{unit["commune_id"]}/{unit["org"]}"]')
        score = row.locator('td[data-field="score"]').inner_text()
        assert float(score.replace(",", ".")) == unit["score"]
        assert int(row.locator('td[data-field="open_flags"]').inner_text()) == unit["open_flags"]
    detail = server.api("/v1/units/C0001/HND")
    page.goto(server.url + "/trang/xa/C0001/HND")
    shot(page, "unit")
    assert float(page.locator("#score").inner_text().replace(",", ".")) == detail["score"]
    assert page.locator("#explanations li").all_inner_texts() == [e["vi"] for e in detail["explanations"]]
    items = server.api("/v1/worklist?per_page=500")["items"]
    page.goto(server.url + "/trang/danh-sach")
    shot(page, "worklist")
    ids = page.locator("#worklist tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert ids == [item["id"] for item in items]
    page.goto(server.url + "/trang/mon-vay/L5")
    loan = server.api("/v1/loans/L5")
    assert page.locator('dd[data-field="status"]').inner_text() == STATUSES[loan["status"]][0]


def test_the_worklist_downloads_as_the_apis_excel(page: Page, server: Server) -> None:
    sign_in(page, server, "d01", "/trang/danh-sach")
    with page.expect_download() as download:
        page.get_by_role("link", name="Tải Excel (.xlsx)").click()
    saved = ARTIFACTS / "danh-sach.xlsx"
    download.value.save_as(saved)
    items = server.api("/v1/worklist?per_page=500", "d01")["items"]
    assert sheet_rows(saved.read_bytes()) == [
        [DUTIES[i["duty"]][0], i["id"], i["district_id"], i["commune_id"], i["org"], i["opened_on"], i["deadline"],
         i["days_left"], STATUSES[i["status"]][0]]
        for i in items
    ]  # fmt: skip


def test_the_print_view_is_the_list_alone(page: Page, server: Server) -> None:
    sign_in(page, server, "all", "/trang/danh-sach")
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible()
    assert not page.locator("form.filters").is_visible()
    assert page.locator("#worklist").is_visible()
    assert page.locator("#worklist th.printonly").first.is_visible()  # columns to fill in at the commune
    shot(page, "worklist-print")
    pdf = page.pdf(path=str(ARTIFACTS / "worklist-print.pdf"), format="A4", prefer_css_page_size=True)
    assert pdf.startswith(b"%PDF")


def test_a_phone_wide_screen_needs_no_horizontal_scroll(browser: Browser, server: Server) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    try:
        phone = context.new_page()
        sign_in(phone, server, "all")
        for path in PAGES:
            phone.goto(server.url + path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
            shot(phone, "phone-" + path.strip("/").replace("/", "-"))
    finally:
        context.close()


def test_the_keyboard_reaches_the_content_first(page: Page, server: Server) -> None:
    sign_in(page, server, "all", "/trang/danh-sach")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Bỏ qua, tới nội dung chính"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


# Every visible text's contrast with the background it sits on (WCAG's relative luminance), and every form
# control's label: checked in the browser on the styles as rendered.
_CONTRAST = """() => {
  const rgb = s => (s.match(/rgba?\\(([^)]+)\\)/) || [null, null])[1]?.split(',').map(Number);
  const linear = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c && (c.length < 4 || c[3] > 0)) return c;
    }
    return [255, 255, 255];
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement, text = walker.currentNode.textContent.trim();
    if (!text || el.closest('svg') || !el.checkVisibility()) continue;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(text.slice(0, 40) + ': ' + ratio.toFixed(2));
  }
  return low;
}"""
_UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name)"""


def test_text_has_contrast_and_controls_have_labels(page: Page, server: Server) -> None:
    page.goto(server.url + "/trang/dang-nhap")
    assert page.evaluate(_CONTRAST) == [] and page.evaluate(_UNLABELLED) == []
    sign_in(page, server, "all")
    for path in [*PAGES, "/trang/huyen/D01?sort=score"]:
        page.goto(server.url + path)
        assert page.locator("html").get_attribute("lang") == "vi"
        assert page.evaluate(_CONTRAST) == [], path
        assert page.evaluate(_UNLABELLED) == [], path

"""The pages' pure parts: words and numbers, the sign-in throttle, the SVG charts, the workbooks."""

from __future__ import annotations

import io
from datetime import date

import openpyxl

from uythac.core.model import Status
from uythac.core.scorecard import CLASSES, COMPONENTS
from uythac.core.worklist import WORK_STATUSES, DutyKind
from uythac.entrypoints.pages import charts, words, workbooks
from uythac.entrypoints.pages.officers import Throttle
from uythac.entrypoints.pages.words import ORGS, day, number
from uythac.schemas.events import ORGS as ORG_CODES


def test_numbers_and_dates_are_written_the_vietnamese_way_first() -> None:
    assert number(1234567, "vi") == "1.234.567" and number(3.5, "vi") == "3,5"
    assert number(1234567, "en") == "1,234,567" and number(3.5, "en") == "3.5"
    assert number(None, "vi") == ""
    assert day("2024-03-01") == day(date(2024, 3, 1)) == "01/03/2024" and day(None) == ""
    assert ORGS["HND"][0] == "Hội Nông dân"


def test_every_code_the_api_answers_has_its_words() -> None:
    assert set(words.ORGS) == set(ORG_CODES) and set(words.CLASSES) == set(CLASSES)
    assert set(words.COMPONENTS) == set(COMPONENTS) and set(words.DUTIES) == {kind.value for kind in DutyKind}
    assert {*Status, *WORK_STATUSES} == set(words.STATUSES)
    assert all(len(pair) == len(words.LANGUAGES) and all(pair) for pair in words.TEXT.values())


def test_failed_sign_ins_wait_longer_and_longer_then_a_success_forgets() -> None:
    throttle = Throttle(free=2, base_s=2, max_s=5)
    for _ in range(2):
        throttle.failed("a", now=100.0)
    assert throttle.wait("a", now=100.0) == 0  # the free failures
    throttle.failed("a", now=100.0)
    assert throttle.wait("a", now=101.0) == 1.0
    throttle.failed("a", now=102.0)
    assert throttle.wait("a", now=102.0) == 4.0
    throttle.failed("a", now=110.0)
    assert throttle.wait("a", now=110.0) == 5.0  # at most max_s
    assert throttle.wait("b", now=110.0) == 0
    throttle.succeeded("a")
    assert throttle.wait("a", now=110.0) == 0


def test_the_throttle_keeps_a_bounded_number_of_addresses() -> None:
    throttle = Throttle(free=0, base_s=10, size=3)
    for n in range(5):
        throttle.failed(f"10.0.0.{n}", now=0.0)
    assert throttle.wait("10.0.0.0", now=0.0) == 0 and throttle.wait("10.0.0.4", now=0.0) == 10


def test_charts_escape_their_text_and_scale_to_the_largest_bar() -> None:
    svg = charts.bars([("<HND>", [("tot", "Tốt", 4), ("yeu", "Yếu", 2)])], "a & b")
    assert "<HND>" not in svg and "&lt;HND&gt;" in svg and "a &amp; b" in svg
    assert 'height="160"' in svg and 'height="80"' in svg
    line = charts.line([("11/2023", 50.0, "50"), ("12/2023", 75.5, "75,5")], "điểm")
    assert "<polyline" in line and "75,5" in line


def test_a_workbook_has_a_frozen_header_and_real_dates() -> None:
    columns = [workbooks.Column("Mã", 10), workbooks.Column("Hạn", 12, "date"), workbooks.Column("Số", 8, "number")]
    body = workbooks.workbook("Danh sách", columns, [["L1", "2024-03-01", 3], ["L2", None, -1]])
    sheet = openpyxl.load_workbook(io.BytesIO(body)).worksheets[0]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:C3"
    assert [cell.value for cell in sheet[1]] == ["Mã", "Hạn", "Số"]
    assert sheet["B2"].value.date() == date(2024, 3, 1) and sheet["B2"].number_format == "dd/mm/yyyy"
    assert sheet["B3"].value is None and sheet["C3"].value == -1

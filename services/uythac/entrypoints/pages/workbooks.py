"""Excel workbooks (.xlsx, XlsxWriter) of what the pages show: the worklist, the flags and the letter's table.

Headers in the officer's language, dates as real date cells (dd/mm/yyyy), the header row frozen, a filter on
it, and widths that fit. The rows are the API's entries (the same functions read them), so a workbook and the
API give the same numbers. Pure but for the bytes: entries in, an .xlsx file out.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import xlsxwriter

from uythac.core.scorecard import CLASSES
from uythac.entrypoints.pages.words import CLASSES as CLASS_WORDS
from uythac.entrypoints.pages.words import DUTIES, STATUSES, TEXT, word

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Column:
    header: str
    width: int
    kind: str = "text"  # text | date | number


def workbook(sheet: str, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> bytes:
    """One sheet: a bold, frozen, filtered header row, then the rows (dates given as ISO text or dates)."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True, "bg_color": "#DDE7F0", "border": 1, "text_wrap": True, "valign": "top"})
    day = book.add_format({"num_format": "dd/mm/yyyy"})
    page = book.add_worksheet(sheet[:31])
    for at, column in enumerate(columns):
        page.set_column(at, at, column.width, day if column.kind == "date" else None)
        page.write_string(0, at, column.header, bold)
    count = 0
    for count, row in enumerate(rows, start=1):
        for at, (column, value) in enumerate(zip(columns, row, strict=True)):
            if value is None:
                continue
            if column.kind == "date":
                found = value if isinstance(value, date) else date.fromisoformat(value)
                page.write_datetime(count, at, found, day)
            elif column.kind == "number":
                page.write_number(count, at, value)
            else:
                page.write_string(count, at, str(value))
    page.freeze_panes(1, 0)
    page.autofilter(0, 0, count, len(columns) - 1)
    page.set_landscape()
    page.set_paper(9)  # A4
    page.repeat_rows(0)
    book.close()
    return out.getvalue()


def _t(key: str, language: str) -> str:
    return word(TEXT, key, language)


# (header, width, kind, the entry's field) of each column; a duty's and a status's code is written as words
_WORKLIST = (
    ("duty", 34, "text", "duty"),
    ("id", 16, "text", "id"),
    ("district", 10, "text", "district_id"),
    ("commune", 10, "text", "commune_id"),
    ("org", 10, "text", "org"),
    ("opened_on", 13, "date", "opened_on"),
    ("deadline", 13, "date", "deadline"),
    ("days_left", 10, "number", "days_left"),
    ("status", 14, "text", "status"),
)
_FLAGS = (
    ("loan", 16, "text", "loan_id"),
    ("district", 10, "text", "district_id"),
    ("commune", 10, "text", "commune_id"),
    ("org", 10, "text", "org"),
    ("disbursed_on", 14, "date", "disbursed_on"),
    ("deadline", 13, "date", "deadline"),
    ("late_inspection_on", 16, "date", "late_inspection_on"),
)
_WORDED = {"duty": DUTIES, "status": STATUSES}


def _entries(
    title: str, spec: Sequence[tuple[str, int, str, str]], items: Iterable[Mapping[str, Any]], language: str
) -> bytes:
    columns = [Column(_t(header, language), width, kind) for header, width, kind, _ in spec]
    rows = (
        [word(_WORDED[field], item[field], language) if field in _WORDED else item[field] for *_, field in spec]
        for item in items
    )
    return workbook(_t(title, language), columns, rows)


def worklist(items: Iterable[Mapping[str, Any]], language: str) -> bytes:
    """The worklist's items (`core.worklist.entry`), in their order: missed first, then by deadline."""
    return _entries("worklist", _WORKLIST, items, language)


def flags(items: Iterable[Mapping[str, Any]], language: str) -> bytes:
    """The flags (`report.flag_entry`): loans whose 30-day inspection was missed, in report order."""
    return _entries("flags", _FLAGS, items, language)


def distribution(table: Mapping[str, Any], language: str) -> bytes:
    """The letter's table (`answers.distribution_table`): a row per district and organization, then a total row
    per organization, units per class and their sum."""
    columns = [
        Column(_t("district", language), 14),
        Column(_t("org", language), 10),
        *(Column(word(CLASS_WORDS, key, language), 11, "number") for key in CLASSES),
        Column(_t("total", language), 10, "number"),
    ]

    def row(place: str, org: str, counts: Mapping[str, int]) -> list[Any]:
        return [place, org, *(counts[key] for key in CLASSES), sum(counts.values())]

    rows = [row(d["district_id"], org, counts) for d in table["districts"] for org, counts in d["distribution"].items()]
    rows += [row(_t("total", language), org, counts) for org, counts in table["distribution"].items()]
    return workbook(_t("distribution", language), columns, rows)

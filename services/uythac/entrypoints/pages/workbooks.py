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


def worklist(items: Iterable[Mapping[str, Any]], language: str) -> bytes:
    """The worklist's items (`core.worklist.entry`), in their order: missed first, then by deadline."""
    columns = [
        Column(_t("duty", language), 34),
        Column(_t("id", language), 16),
        Column(_t("district", language), 10),
        Column(_t("commune", language), 10),
        Column(_t("org", language), 10),
        Column(_t("opened_on", language), 13, "date"),
        Column(_t("deadline", language), 13, "date"),
        Column(_t("days_left", language), 10, "number"),
        Column(_t("status", language), 14),
    ]
    rows = (
        [
            word(DUTIES, item["duty"], language),
            item["id"],
            item["district_id"],
            item["commune_id"],
            item["org"],
            item["opened_on"],
            item["deadline"],
            item["days_left"],
            word(STATUSES, item["status"], language),
        ]
        for item in items
    )
    return workbook(_t("worklist", language), columns, rows)


def flags(items: Iterable[Mapping[str, Any]], language: str) -> bytes:
    """The flags (`report.flag_entry`): loans whose 30-day inspection was missed, in report order."""
    columns = [
        Column(_t("loan", language), 16),
        Column(_t("district", language), 10),
        Column(_t("commune", language), 10),
        Column(_t("org", language), 10),
        Column(_t("disbursed_on", language), 14, "date"),
        Column(_t("deadline", language), 13, "date"),
        Column(_t("late_inspection_on", language), 16, "date"),
    ]
    rows = (
        [
            item["loan_id"],
            item["district_id"],
            item["commune_id"],
            item["org"],
            item["disbursed_on"],
            item["deadline"],
            item["late_inspection_on"],
        ]
        for item in items
    )
    return workbook(_t("flags", language), columns, rows)


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

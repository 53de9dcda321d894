"""Helpers for the pages' tests: the API test province served to officers, signing in through the form, and
reading back what a page or a workbook shows."""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

import openpyxl
from flask.testing import FlaskClient

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf(client: FlaskClient, path: str = "/trang/dang-nhap") -> str:
    found = CSRF.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, key: str, target: str = "/trang/") -> Any:
    return client.post("/trang/dang-nhap", data={"csrf": csrf(client), "key": key, "next": target})


def sheet_rows(body: bytes) -> list[list[Any]]:
    """The first sheet's rows after the header, dates as ISO text (they are date cells)."""
    book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    sheet = book.worksheets[0]
    rows = [
        [value.date().isoformat() if isinstance(value, datetime) else value for value in row]
        for row in sheet.iter_rows(min_row=2, values_only=True)
    ]
    book.close()
    return rows

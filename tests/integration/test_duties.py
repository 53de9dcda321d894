"""The service's reading of the other inspection duties, on the hand-checked cases of the reference.

`tests/unit/test_reference_duties.py` holds the reference to the contract, case by case, at every boundary
(day 89 and 90 of inactivity; O, E and E+1; 31/12 and 01/01; groups registered 90 and 91 days before T; a
repayment dated on O; ...). The same cases run here on the service: each report is replayed onto a fresh store
in one batch, then again one event per batch in reverse order, and both must be the case's expected report.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.support import report_of
from tests.unit import test_reference_duties as cases

pytestmark = pytest.mark.usefixtures("store_kind")  # each test on SQLite, then PostgreSQL

Events = list[dict[str, Any]]
PARAMETER_SET = type(pytest.param(None))


def _cases() -> list[Any]:
    """Each test of the reference's module, once per parameter set if it is parametrized."""
    found = []
    for name in sorted(name for name in dir(cases) if name.startswith("test_")):
        marks = [mark for mark in getattr(getattr(cases, name), "pytestmark", []) if mark.name == "parametrize"]
        if not marks:
            found.append(pytest.param(name, {}, id=name))
            continue
        (mark,) = marks
        names = [part.strip() for part in mark.args[0].split(",")] if isinstance(mark.args[0], str) else mark.args[0]
        for index, values in enumerate(mark.args[1]):
            values = values.values if isinstance(values, PARAMETER_SET) else values
            arguments = dict(zip(names, values if len(names) > 1 else (values,), strict=True))
            found.append(pytest.param(name, arguments, id=f"{name}[{index}]"))
    return found


CASES = _cases()


def by_the_service(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    def report(events: Events, as_of: date | None = None) -> dict[str, Any]:
        whole = report_of(tmp_path, events, as_of=as_of)
        one_by_one = report_of(tmp_path, list(reversed(events)), as_of=as_of, batch_size=1)
        assert one_by_one == whole
        return whole

    return report


@pytest.mark.parametrize(("case", "arguments"), CASES)
def test_the_service_reads_the_duties_as_the_reference(
    case: str, arguments: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cases, "reference_report", by_the_service(tmp_path))
    getattr(cases, case)(**arguments)


def test_every_case_runs_on_the_service() -> None:
    assert len(CASES) >= 25

"""Tables for a person at a terminal (rich): the province letter's distribution of units per class.

The letter's shape: "3/520 communes good (Tốt), 113 fair (Khá), 396 average (Trung bình), 8 weak (Yếu)".
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.table import Table

from uythac.core.scorecard import CLASSES
from uythac.schemas.events import ORGS


def distribution_table(report: dict[str, Any]) -> Table:
    """Units per class (T/K/TB/Y) by district and organization, with a province total."""
    counts: Counter[tuple[str, str, str]] = Counter(
        (unit["district_id"], unit["org"], unit["class"]) for unit in report["units"]
    )
    districts = sorted({unit["district_id"] for unit in report["units"]})
    table = Table(title=f"Units per class (Tốt/Khá/Trung bình/Yếu) as of {report['as_of']}")
    table.add_column("district")
    for org in ORGS:
        table.add_column(org, justify="right")
    for district in [*districts, "total"]:
        cells = []
        for org in ORGS:
            row = [
                sum(counts[(d, org, rating)] for d in districts)
                if district == "total"
                else counts[(district, org, rating)]
                for rating in CLASSES
            ]
            cells.append("/".join(map(str, row)))
        table.add_row(district, *cells, end_section=district == districts[-1] if districts else False)
    return table

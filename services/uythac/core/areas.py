"""Where a caller may look, and what a list asks for: the vocabulary of scoped API keys and filters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Area:
    """Where a caller may look: the whole province (no id), one district or one commune; and within it every
    organization (org None) or one (a district's Farmers' Association sees none of its Women's Union's units)."""

    district_id: str | None = None
    commune_id: str | None = None
    org: str | None = None

    def covers(self, district_id: str | None, commune_id: str | None, org: str | None) -> bool:
        return (
            (self.district_id is None or self.district_id == district_id)
            and (self.commune_id is None or self.commune_id == commune_id)
            and (self.org is None or self.org == org)
        )


EVERYWHERE = Area()


@dataclass(frozen=True)
class Selection:
    """What a list asks for: the caller's area, narrowed further by the request's own filters."""

    area: Area = EVERYWHERE
    district_id: str | None = None
    commune_id: str | None = None
    org: str | None = None

    def equalities(self) -> dict[str, str] | None:
        """The value each of district_id, commune_id and org must have (those fixed); None when the area
        and a filter disagree (C0002 asked with a key for C0001), which selects nothing."""
        wanted: dict[str, str] = {}
        for column, value in (
            ("district_id", self.area.district_id),
            ("district_id", self.district_id),
            ("commune_id", self.area.commune_id),
            ("commune_id", self.commune_id),
            ("org", self.area.org),
            ("org", self.org),
        ):
            if value is not None and wanted.setdefault(column, value) != value:
                return None
        return wanted

    def admits(self, entry: Mapping[str, Any]) -> bool:
        """The same test on a report entry (a stored report's unit or flag), in Python."""
        wanted = self.equalities()
        return wanted is not None and all(entry[column] == value for column, value in wanted.items())

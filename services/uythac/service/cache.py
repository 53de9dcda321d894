"""Loans and groups kept in memory between batches: a batch reads from the store only what it has not seen.

A cached entity carries what it counts for in its unit now (`counted`, `counted_in`, set here when it is
read), so a batch moves only the difference (`processor`); beside it the cache keeps its **row as
stored**, so the store writes back only the columns that changed (the unit of work fills and updates
`rows`).

Everything here mirrors committed state. A batch that fails leaves it wrong, so the processor clears it and
reads again; only one worker writes a store (docs/architecture.md), so nothing else can make it stale. It is
bounded: after a commit, past `limit` entities of a kind, the least recently used are dropped (their rows are
in the store, and what they count for is worked out again when they are read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from uythac.core.model import NOTHING, Bounds, Counts, Group, Loan, UnitKey
from uythac.service.ports import Rows


class Entity(Protocol):
    counted: Counts
    counted_in: UnitKey | None

    @property
    def unit(self) -> UnitKey | None: ...

    def contribution(self, at: Bounds) -> Counts: ...


E = TypeVar("E", bound=Entity)


class Kept(Generic[E]):
    """One kind of entity (loans or groups), by id, least recently used first."""

    def __init__(self, make: Callable[[str], E], limit: int) -> None:
        self.make, self.limit = make, limit
        self.entities: dict[str, E] = {}
        self.rows: dict[str, tuple[Any, ...]] = {}  # as the store has them (the store keeps this up to date)

    def take(
        self, ids: Sequence[str], read: Callable[[Sequence[str]], dict[str, E]], at: Bounds | None
    ) -> dict[str, E]:
        """These entities, by id in the order given: kept ones as they are, the others read from the store
        (`read`; new ones made empty) counting for their contribution at `at`, the clock the store's unit
        counts are at."""
        entities, taken, missing = self.entities, {}, []
        for key in ids:
            entity = entities.pop(key, None)  # and put back last: most recently used
            if entity is None:
                missing.append(key)
            else:
                entities[key] = taken[key] = entity
        if missing:
            found = read(missing)
            for key in missing:
                entity = found.get(key) or self.make(key)
                entities[key] = taken[key] = entity
                entity.counted_in, entity.counted = entity.unit, NOTHING if at is None else entity.contribution(at)
        return taken if not missing else {key: taken[key] for key in ids}

    def trim(self) -> None:
        """Drop the least recently used entities past the limit."""
        excess = len(self.entities) - self.limit
        if excess <= 0:
            return
        for key in list(_first(self.entities, excess)):
            del self.entities[key]
            self.rows.pop(key, None)

    def clear(self) -> None:
        self.entities.clear()
        self.rows.clear()


def _first(entities: dict[str, Any], n: int) -> Iterable[str]:
    for i, key in enumerate(entities):
        if i >= n:
            return
        yield key


class Cache:
    """The loans and groups of one store, each kind bounded by `limit` entities."""

    def __init__(self, limit: int) -> None:
        self.loans: Kept[Loan] = Kept(Loan, limit)
        self.groups: Kept[Group] = Kept(Group, limit)

    def rows(self) -> Rows:
        """The rows as stored, by table: the store's unit of work reads and updates them."""
        return {"loans": self.loans.rows, "groups": self.groups.rows}

    def trim(self) -> None:
        self.loans.trim()
        self.groups.trim()

    def clear(self) -> None:
        self.loans.clear()
        self.groups.clear()

"""Loans and groups kept in memory between batches: a batch reads from the store only what it has not seen.

A cached entity carries what it counts for in its unit now (`counted`, `counted_in`, set here when it is
read), so a batch moves only the difference (`processor`); beside it the cache keeps its **row as
stored**, so the store writes back only the columns that changed (the unit of work fills and updates
`rows`).

Everything here mirrors committed state. A batch that fails leaves it wrong, so the processor clears it and
reads again; only one worker writes a store (docs/architecture.md), so nothing else can make it stale. It is
bounded: after a commit, past `limit` entities of a kind, the least recently used are dropped (their rows are
in the store, and what they count for is worked out again when they are read). Before that, the entities a
batch left **at rest** (a loan repaid in full, a group closed, with nothing left for the clock to change) are
dropped: they are seldom named again, so what is kept is the open work, up to `limit`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from uythac.core.model import NOTHING, Bounds, Counts, Group, Loan, UnitKey
from uythac.service.ports import Rows


class Entity(Protocol):
    counted: Counts
    counted_in: UnitKey | None

    @property
    def at_rest(self) -> bool: ...

    @property
    def unit(self) -> UnitKey | None: ...

    def contribution(self, at: Bounds) -> Counts: ...


E = TypeVar("E", bound=Entity)


class Kept(Generic[E]):
    """One kind of entity (loans or groups), by id, least recently used first."""

    def __init__(self, make: Callable[[str], E], limit: int) -> None:
        self.make, self.limit = make, limit
        # an OrderedDict, not a dict: finding the oldest entries of a dict walks past the slots of those dropped
        # before (until it is resized), batch after batch once the cache is full
        self.entities: OrderedDict[str, E] = OrderedDict()
        self.rows: dict[str, tuple[Any, ...]] = {}  # as the store has them (the store keeps this up to date)

    def take(
        self, ids: Sequence[str], read: Callable[[Sequence[str]], dict[str, E]], at: Bounds | None
    ) -> dict[str, E]:
        """These entities, by id in the order given: kept ones as they are, the others read from the store
        (`read`; new ones made empty) counting for their contribution at `at`, the clock the store's unit
        counts are at."""
        entities, taken, missing = self.entities, {}, []
        for key in ids:
            entity = entities.get(key)
            if entity is None:
                missing.append(key)
            else:
                entities.move_to_end(key)  # most recently used
                taken[key] = entity
        if missing:
            found = read(missing)
            for key in missing:
                entity = found.get(key) or self.make(key)
                entities[key] = taken[key] = entity
                entity.counted_in, entity.counted = entity.unit, NOTHING if at is None else entity.contribution(at)
        return taken if not missing else {key: taken[key] for key in ids}

    def trim(self, batch: Mapping[str, E]) -> None:
        """Drop the entities of the batch just committed (`batch`, by id) that are at rest, then the least recently
        used past the limit."""
        entities, rows = self.entities, self.rows
        for key, entity in batch.items():
            if entity.at_rest and entities.pop(key, None) is not None:
                rows.pop(key, None)
        for _ in range(len(entities) - self.limit):
            key, _entity = entities.popitem(last=False)
            rows.pop(key, None)

    def clear(self) -> None:
        self.entities.clear()
        self.rows.clear()


class Cache:
    """The loans and groups of one store, each kind bounded by `limit` entities."""

    def __init__(self, limit: int) -> None:
        self.loans: Kept[Loan] = Kept(Loan, limit)
        self.groups: Kept[Group] = Kept(Group, limit)

    def rows(self) -> Rows:
        """The rows as stored, by table: the store's unit of work reads and updates them."""
        return {"loans": self.loans.rows, "groups": self.groups.rows}

    def trim(self, loans: Mapping[str, Loan], groups: Mapping[str, Group]) -> None:
        """After a commit; `loans` and `groups`: the batch's."""
        self.loans.trim(loans)
        self.groups.trim(groups)

    def clear(self) -> None:
        self.loans.clear()
        self.groups.clear()

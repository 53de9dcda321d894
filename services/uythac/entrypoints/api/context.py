"""What every view needs, made once per process by `create_app` and kept on the Flask app; and the
request's read transaction on the store."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app, g
from sqlalchemy.engine import Connection

from uythac.adapters.sql import queries
from uythac.adapters.sql.store import Store
from uythac.core.scorecard import Scorecard
from uythac.entrypoints.api.publisher import Publisher
from uythac.settings import Settings

if TYPE_CHECKING:  # caching's views read the request's services from here
    from uythac.entrypoints.api.caching import Bodies, Scores

EXTENSION = "uythac"


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    card: Scorecard
    scores: Scores
    publisher: Publisher
    bodies: Bodies  # the costliest answers (report, table), per store version
    pages: Bodies  # pages of lists, per store version (`caching.per_version`)


def services() -> Services:
    found: Services = current_app.extensions[EXTENSION]
    return found


def reading() -> Connection:
    """The request's one read transaction (`queries.snapshot`), begun at its first read, ended with the
    request: a kept page's version and the view that makes the page read the same state, and a request
    pays for one connection and one BEGIN however many parts read the store."""
    if "reading" not in g:
        g.reading = ExitStack()
        g.connection = g.reading.enter_context(queries.snapshot(services().store))
    connection: Connection = g.connection
    return connection


def end_reading(_error: BaseException | None) -> None:
    """Ends the request's read transaction, if it began one (`create_app` registers it at teardown)."""
    stack: ExitStack | None = g.pop("reading", None)
    if stack is not None:
        stack.close()

"""What every view needs, made once per process by `create_app` and kept on the Flask app; the request's read
transaction on the store; and the views' answers kept per store version (`per_version`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import wraps

from flask import Response, current_app, g, request
from sqlalchemy.engine import Connection

from uythac.adapters.kafka.publisher import Publisher
from uythac.adapters.sql import queries
from uythac.adapters.sql.store import Store
from uythac.core.scorecard import Scorecard
from uythac.entrypoints.api import tables
from uythac.entrypoints.api.auth import caller
from uythac.entrypoints.api.caching import Bodies, Scores
from uythac.entrypoints.api.marshal import JSON
from uythac.settings import Settings

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


def per_version(view: Callable[..., Response]) -> Callable[..., Response]:
    """Keep the view's 200 JSON answers per (store version, path and query, caller's area): a scoped key never
    gets an answer made for another area. A CSV answer (`tables`) is made for each request."""

    @wraps(view)
    def answer(**path: str) -> Response:
        if tables.wanted():
            return view(**path)
        context = services()
        connection = reading()
        version = queries.version(connection)
        key = ("view", version, request.full_path, caller().area)
        return Response(context.pages.get(key, lambda: view(**path).get_data()), mimetype=JSON)

    return answer

"""Pages whose answer is kept per version of the store (see `uythac.api.memo`).

A district's flags or units, a page of an organization's flags, a unit's detail: the same pages are
asked for again and again between two batches of the worker, and counting a district's flags in the
window costs more than all the rest of such a request. The key is the store version, the request's
path and query, and the caller's area, so a scoped key never gets an answer made for another area.
Pages are kept apart from the report and the table (`Services.pages`): many pages never push those out.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Response, request

from uythac import queries
from uythac.api.auth import caller
from uythac.api.context import reading, services
from uythac.api.marshal import JSON


def per_version(view: Callable[..., Response]) -> Callable[..., Response]:
    """Keep the view's 200 answers per (store version, path and query, caller's area)."""

    @wraps(view)
    def answer(**path: str) -> Response:
        context = services()
        connection = reading()
        version = queries.version(connection)
        key = ("view", version, request.full_path, caller().area)
        return Response(context.pages.get(key, lambda: view(**path).get_data()), mimetype=JSON)

    return answer

"""What every view needs, made once per process by `create_app` and kept on the Flask app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from uythac.answers import Scores
from uythac.api.memo import Bodies
from uythac.api.publisher import Publisher
from uythac.scorecard import Scorecard
from uythac.settings import Settings
from uythac.store import Store

EXTENSION = "uythac"


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    card: Scorecard
    scores: Scores
    publisher: Publisher
    bodies: Bodies  # the costliest answers (report, table), per store version
    pages: Bodies  # pages of lists, per store version (`uythac.api.cached`)


def services() -> Services:
    found: Services = current_app.extensions[EXTENSION]
    return found

"""Pages for the associations' officers (Flask + Jinja, served by the API's app under /trang): the province's
table, a district's units, a unit, a loan and the worklist, in Vietnamese first, with Excel downloads.

Every page answers from the same functions as the API's JSON views (`api.units.unit_detail`,
`api.inspections.worklist_items`, ...) within the signed-in officer's area (`officers`), so a page, its workbook
and the API give the same numbers. No JavaScript; every asset is served from here (a bank's network may be closed).
"""

from __future__ import annotations

from flask import Flask

from uythac.entrypoints.api.auth import ApiKey
from uythac.entrypoints.pages import officers
from uythac.entrypoints.pages.views import EXTENSION, Pages, bp
from uythac.settings import Settings


def init_app(app: Flask, keys: dict[str, ApiKey], settings: Settings) -> None:
    officers.configure(app, settings.pages_secret, settings.pages_session_minutes)
    app.extensions[EXTENSION] = Pages.made(keys, settings)
    app.register_blueprint(bp)

"""Who is looking at the pages: an officer signs in with an API key and gets a signed session cookie.

The cookie (Flask's session, signed with `UYTHAC_PAGES_SECRET`) holds the key's SHA-256, never the key, and is
checked against the keys in force on every request: a key taken out of the keys file (and the file reloaded)
signs its officers out. The key's area is the request's (`auth.caller`), so every page reads through the same
`Selection(caller-area, ...)` as the API. Every form posts a CSRF token; failed sign-ins from one address wait
longer and longer (`Throttle`).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from flask import Flask, Request, g, request, session
from flask.sessions import SecureCookieSessionInterface

from uythac.entrypoints.api.auth import ApiKey, digest

COOKIE = "uythac_trang"
PATH = "/trang"


class Sessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, Secure when the request came over HTTPS (itself, or nginx's
    X-Forwarded-Proto): the same server answers on plain HTTP on loopback (`make run`)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https")


def configure(app: Flask, secret: str, minutes: int) -> None:
    app.secret_key = secret or secrets.token_urlsafe(32)
    app.session_interface = Sessions()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_PATH=PATH,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=minutes),
        SESSION_REFRESH_EACH_REQUEST=False,  # the lifetime runs from sign-in, not from the last page
    )


def officer(keys: dict[str, ApiKey]) -> ApiKey | None:
    """The signed-in officer's key, if the session names one still in force (configured, not expired); it becomes
    the request's key."""
    hashed = session.get("key")
    key = keys.get(hashed) if isinstance(hashed, str) else None
    if key is not None and key.expired():
        return None
    if key is not None:
        g.api_key = key
    return key


def sign_in(keys: dict[str, ApiKey], presented: str) -> ApiKey | None:
    """Check the key as the API does (its SHA-256 among the keys in force, not expired); a new session on success."""
    key = keys.get(digest(presented.strip())) if presented.strip() else None
    if key is not None and key.expired():
        return None
    if key is not None:
        language = session.get("lang")
        session.clear()  # a fresh session (and CSRF token) for the signed-in officer
        session.permanent = True
        session["key"] = digest(presented.strip())
        if language:
            session["lang"] = language
    return key


def sign_out() -> None:
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language


def csrf_token() -> str:
    """The session's CSRF token, made on first use (the sign-in form is the first)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(form: Any) -> bool:
    expected, given = session.get("csrf"), form.get("csrf", "")
    return isinstance(expected, str) and isinstance(given, str) and hmac.compare_digest(expected, given)


def address(req: Request) -> str:
    """The client's address: nginx's X-Forwarded-For when the request came from a loopback proxy (nginx sets
    it and drops what a client sent), else the peer's own."""
    peer = req.remote_addr or ""
    forwarded = req.headers.get("X-Forwarded-For", "")
    try:
        loopback = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        loopback = False
    return forwarded.split(",")[-1].strip() if loopback and forwarded else peer


class Throttle:
    """Failed sign-ins per address: after `free` failures in a row each one more makes the address wait twice as
    long (from `base_s`, at most `max_s`) before it may try again; a success forgets the address. Kept per API
    process for the `size` latest addresses."""

    def __init__(self, free: int = 5, base_s: float = 2.0, max_s: float = 900.0, size: int = 10_000) -> None:
        self.free, self.base_s, self.max_s, self.size = free, base_s, max_s, size
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address → (failures, not before)
        self._lock = threading.Lock()

    def wait(self, where: str, now: float | None = None) -> float:
        """Seconds before `where` may try again (0: now)."""
        with self._lock:
            failures = self._failures.get(where)
        return 0.0 if failures is None else max(0.0, failures[1] - (time.monotonic() if now is None else now))

    def failed(self, where: str, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        with self._lock:
            count = self._failures.pop(where, (0, 0.0))[0] + 1
            extra = count - self.free
            wait = 0.0 if extra <= 0 else min(self.max_s, self.base_s * 2 ** (extra - 1))
            self._failures[where] = (count, moment + wait)
            while len(self._failures) > self.size:
                self._failures.popitem(last=False)

    def succeeded(self, where: str) -> None:
        with self._lock:
            self._failures.pop(where, None)

"""Bearer API keys: who may call, and which area of the province each caller sees.

Keys are configured in a YAML file (`UYTHAC_API_KEYS_FILE`), one entry per caller:

    keys:
      - {name: so-thanh-hoa, hash: <sha256 hex of the key>, scope: all}
      - {name: huyen-d01, hash: ..., scope: "district:D01"}
      - {name: xa-c0001, hash: ..., scope: "commune:C0001"}
      - {name: hnd-d01, hash: ..., scope: "district:D01,org:HND", expires: "2027-06-30"}
      - {name: hnd-tinh, hash: ..., scope: "org:HND"}

A scope is `all`, or a place (`district:<id>` or `commune:<id>`) and/or an organization (`org:<code>`): the
district's Farmers' Association (`district:D01,org:HND`) sees the HND units of D01 and nothing of its Women's
Union's; `org:HND` alone is the province's association. A key with `expires` works through that day (in
Vietnam) and is refused with a 401 that says it expired from the next.

The file holds hashes only. A key is 32 random bytes from `secrets` (`uythac apikey` makes one), so a
plain SHA-256 is enough: salting and slow hashing protect guessable passwords, and 256 random bits are
not guessable; a leaked file does not give the keys away. Lookup is by the hash of the key presented.

A scoped key sees its area only: lists are filtered to it; a unit or loan outside it is 404, as if it did
not exist (a 403 would confirm that it does); the report and the distribution cover the area only.
Without a keys file every keyed endpoint answers 401: the API never opens itself by omission.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from flask import Flask, g, request
from marshmallow import Schema, ValidationError, fields, validate, validates

from uythac.core.areas import EVERYWHERE, Area
from uythac.core.dates import VIETNAM
from uythac.entrypoints.api.limits import RateLimits
from uythac.entrypoints.api.problems import Problem
from uythac.errors import ConfigError
from uythac.schemas.events import AREA_PATTERN, ORGS

KEY_PREFIX = "uythac_"
_AREA_ID = re.compile(AREA_PATTERN)
SCOPES = (
    "all, or district:<district_id> or commune:<commune_id> and/or org:<" + "|".join(ORGS) + ">, "
    "joined by a comma (district:D01,org:HND)"
)


@dataclass(frozen=True)
class ApiKey:
    name: str
    scope: str  # as configured: all | district:<id> | commune:<id> | org:<code>, place and org joined by a comma
    area: Area
    expires: date | None = None  # the last day (in Vietnam) the key works; None: until revoked

    def expired(self) -> bool:
        return self.expires is not None and today() > self.expires


def parse_scope(text: str) -> Area:
    """`all`, `district:D01`, `commune:C0001`, `org:HND` or a place and an org (`district:D01,org:HND`) as the
    area it opens; ValueError for anything else."""
    if text == "all":
        return EVERYWHERE
    parts: dict[str, str] = {}
    for part in text.split(","):
        level, _, value = part.strip().partition(":")
        place = level in ("district", "commune") and _AREA_ID.match(value) is not None
        fits = place or (level == "org" and value in ORGS)
        if not fits or level in parts:
            raise ValueError(f"scope must be {SCOPES}, not {text!r}")
        parts[level] = value
    if "district" in parts and "commune" in parts:
        raise ValueError(f"scope names a district or a commune, not both: {text!r}")
    return Area(parts.get("district"), parts.get("commune"), parts.get("org"))


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh key: 32 random bytes, URL-safe, with a prefix that secret scanners can recognise."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def entry(name: str, scope: str, key: str, expires: date | None = None) -> str:
    """The YAML line to add under `keys:` for this key."""
    parse_scope(scope)
    item = {"name": name, "hash": digest(key), "scope": scope}
    if expires is not None:
        item["expires"] = expires.isoformat()
    return _line(item)


def _line(item: dict[str, Any]) -> str:
    """One key's entry as the keys file's line under `keys:`."""
    return "  - " + yaml.safe_dump(item, default_flow_style=True, sort_keys=False, width=1 << 16)


class _KeySchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    hash = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}\Z", error="must be 64 hex digits"))
    scope = fields.String(required=True)
    expires = fields.Date(load_default=None)

    @validates("scope")
    def _scope(self, value: str, **_: Any) -> None:
        try:
            parse_scope(value)
        except ValueError as error:
            raise ValidationError(str(error)) from error


class _KeysFileSchema(Schema):
    keys = fields.List(fields.Nested(_KeySchema), required=True)


def load_keys(path: str) -> dict[str, ApiKey]:
    """The configured keys by hash; none without a file. ConfigError for a file that cannot be trusted."""
    if not path:
        return {}
    try:
        data = _KeysFileSchema().load(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise ConfigError(f"API keys file {path}: {getattr(error, 'messages', error)}") from error
    keys: dict[str, ApiKey] = {}
    for item in data["keys"]:
        if item["hash"] in keys:
            raise ConfigError(f"API keys file {path}: the same key is configured twice ({item['name']})")
        keys[item["hash"]] = ApiKey(item["name"], item["scope"], parse_scope(item["scope"]), item["expires"])
    return keys


def today() -> date:
    """Today in Vietnam: the day an expiry is counted in."""
    return datetime.now(VIETNAM).date()


def add(path: str, name: str, line: str) -> None:
    """Add an entry (`entry`) to the keys file, replacing the file whole; ConfigError if the file does not load
    or already has a key of that name (revoking by name must take out the key meant, and only it)."""
    file = Path(path)
    keys = load_keys(path) if file.exists() else {}
    if any(key.name == name for key in keys.values()):
        raise ConfigError(f"API keys file {path}: a key named {name} is configured already (revoke it first)")
    text = (file.read_text(encoding="utf-8").rstrip("\n") if keys else "keys:") + "\n" + line
    try:
        added = _KeysFileSchema().load(yaml.safe_load(text))["keys"]
    except (yaml.YAMLError, ValidationError):
        added = []
    if len(added) != len(keys) + 1:
        raise ConfigError(f"API keys file {path}: cannot add a line to it (not a block list under `keys:`)")
    replace_file(file, text)


def revoke(path: str, name: str) -> int:
    """Take every key named `name` out of the keys file, by replacing the file whole (a running API reloading it
    reads the old file or the new one, never half of one); how many were taken out. The file is written back
    from its data: comments do not survive."""
    load_keys(path)  # refuse to rewrite a file the API would not load
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    kept = [item for item in data["keys"] if item["name"] != name]
    if len(kept) == len(data["keys"]):
        return 0
    replace_file(Path(path), "keys:\n" + "".join(map(_line, kept)) if kept else "keys: []\n")
    return len(data["keys"]) - len(kept)


def replace_file(path: Path, text: str) -> None:
    """Write `text` to a new file beside `path`, then rename it over `path` (atomic on POSIX), keeping its mode."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Guard:
    """Checks the bearer key before a view runs, by blueprint: which need a key, which need scope `all`; and how
    fast a key scoped below `all` calls (`limits`)."""

    def __init__(
        self, keys: dict[str, ApiKey], keyed: set[str], everywhere: set[str], limits: RateLimits | None
    ) -> None:
        self.keys, self.keyed, self.everywhere, self.limits = keys, keyed | everywhere, everywhere, limits

    def init_app(self, app: Flask) -> None:
        app.before_request(self.check)

    def check(self) -> None:
        if request.blueprint not in self.keyed:
            return
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem("unauthorized", "send an API key: Authorization: Bearer <key>", headers=_challenge())
        key = self.keys.get(digest(token.strip()))
        if key is None:
            detail = "this API key is not configured" if self.keys else "no API keys are configured on this server"
            raise Problem("unauthorized", detail, headers=_challenge('error="invalid_token"'))
        if key.expired():
            detail = f"this API key ({key.name}) expired on {key.expires}: ask for a new one"
            raise Problem("unauthorized", detail, headers=_challenge('error="invalid_token"'))
        g.api_key = key
        if request.blueprint in self.everywhere and key.area != EVERYWHERE:
            raise Problem("forbidden", f"this endpoint needs a key of scope all, not {key.scope}")
        if self.limits is not None and key.area != EVERYWHERE and (wait := self.limits.wait(key.name)):
            detail = f"more than {self.limits.rate:g} requests a second with this key ({key.name}); slow down"
            raise Problem("too-many-requests", detail, headers={"Retry-After": str(max(1, round(wait)))})


def _challenge(error: str = "") -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="uythac"' + (f", {error}" if error else "")}


def caller() -> ApiKey:
    """The key of the request (views of keyed blueprints only: the guard has checked it)."""
    key: ApiKey = g.api_key
    return key


def caller_name() -> str | None:
    """For the request log: the key's name, never the key."""
    key: ApiKey | None = g.get("api_key")
    return None if key is None else key.name

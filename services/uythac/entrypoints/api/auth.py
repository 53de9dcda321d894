"""Bearer API keys: who may call, and which area of the province each caller sees.

Keys are configured in a YAML file (`UYTHAC_API_KEYS_FILE`), one entry per caller:

    keys:
      - {name: so-thanh-hoa, hash: <sha256 hex of the key>, scope: all}
      - {name: huyen-d01, hash: ..., scope: "district:D01"}
      - {name: xa-c0001, hash: ..., scope: "commune:C0001"}

The file holds hashes only. A key is 32 random bytes from `secrets` (`uythac apikey` makes one), so a
plain SHA-256 is enough: salting and slow hashing protect guessable passwords, and 256 random bits are
not guessable; a leaked file does not give the keys away. Lookup is by the hash of the key presented.

A scoped key sees its area only: lists are filtered to it; a unit or loan outside it is 404, as if it did
not exist (a 403 would confirm that it does); the report and the distribution cover the area only.
Without a keys file every keyed endpoint answers 401: the API never opens itself by omission.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from flask import Flask, g, request
from marshmallow import Schema, ValidationError, fields, validate, validates

from uythac.core.areas import EVERYWHERE, Area
from uythac.entrypoints.api.limits import RateLimits
from uythac.entrypoints.api.problems import Problem
from uythac.errors import ConfigError
from uythac.schemas.events import AREA_PATTERN

KEY_PREFIX = "uythac_"
_AREA_ID = re.compile(AREA_PATTERN)
SCOPES = "all, district:<district_id> or commune:<commune_id>"


@dataclass(frozen=True)
class ApiKey:
    name: str
    scope: str  # as configured: all | district:<id> | commune:<id>
    area: Area


def parse_scope(text: str) -> Area:
    """`all`, `district:D01` or `commune:C0001` as the area it opens; ValueError for anything else."""
    if text == "all":
        return EVERYWHERE
    level, _, area_id = text.partition(":")
    if level not in ("district", "commune") or not _AREA_ID.match(area_id):
        raise ValueError(f"scope must be {SCOPES}, not {text!r}")
    return Area(district_id=area_id) if level == "district" else Area(commune_id=area_id)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh key: 32 random bytes, URL-safe, with a prefix that secret scanners can recognise."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def entry(name: str, scope: str, key: str) -> str:
    """The YAML line to add under `keys:` for this key."""
    parse_scope(scope)
    item = {"name": name, "hash": digest(key), "scope": scope}
    return "  - " + yaml.safe_dump(item, default_flow_style=True, sort_keys=False, width=1 << 16)


class _KeySchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    hash = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}\Z", error="must be 64 hex digits"))
    scope = fields.String(required=True)

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
        keys[item["hash"]] = ApiKey(item["name"], item["scope"], parse_scope(item["scope"]))
    return keys


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

"""Helpers for the API tests: API keys of every scope, and the keys file that configures them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from uythac.entrypoints.api.auth import entry, new_key

SCOPES = {"all": "all", "d01": "district:D01", "c0001": "commune:C0001", "nowhere": "district:D99"}


@dataclass(frozen=True)
class Keys:
    """One key per scope of `SCOPES` (by its short name), and the keys file that configures them."""

    path: Path
    keys: dict[str, str]

    def header(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


def write_keys(directory: Path, scopes: Mapping[str, str] = SCOPES) -> Keys:
    keys = {name: new_key() for name in scopes}
    path = directory / "api-keys.yaml"
    path.write_text("keys:\n" + "".join(entry(name, scopes[name], keys[name]) for name in scopes), encoding="utf-8")
    return Keys(path, keys)

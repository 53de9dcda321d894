"""The core is pure: importing every module of `uythac.core` loads no database, Kafka, HTTP or metrics library
(a fresh interpreter, so nothing another test imported counts)."""

from __future__ import annotations

import subprocess
import sys

IO_LIBRARIES = {
    "sqlalchemy",
    "sqlite3",
    "_sqlite3",
    "psycopg",
    "kafka",
    "flask",
    "werkzeug",
    "gunicorn",
    "prometheus_client",
}
LOAD_ALL = """
import importlib, pkgutil, sys
import uythac.core
for module in pkgutil.walk_packages(uythac.core.__path__, "uythac.core."):
    importlib.import_module(module.name)
print("\\n".join(sys.modules))
"""


def _loaded(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return set(done.stdout.split())


def test_the_core_loads_no_io_library() -> None:
    loaded = _loaded(LOAD_ALL)
    assert "uythac.core.model" in loaded and "uythac.core.engine" in loaded  # it did load the core
    assert sorted(name for name in loaded if name.split(".")[0] in IO_LIBRARIES) == []


def test_the_core_and_the_service_layer_import_no_adapter_or_entry_point() -> None:
    loaded = _loaded(LOAD_ALL.replace("uythac.core", "uythac.service"))
    assert "uythac.service.processor" in loaded and "uythac.service.checkpoint" in loaded
    outside = {"uythac.adapters", "uythac.entrypoints", "uythac.devtools", "uythac.bootstrap"}
    assert sorted(name for name in loaded if any(name.startswith(prefix) for prefix in outside)) == []

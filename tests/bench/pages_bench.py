"""The officers' pages' server time on the 520-commune province (`api_bench.store`, kept under var/bench/).

In process, on Flask's test client (no network, no gunicorn: the time is the server's own, and the client's small
share of it counts too), each page is asked BENCH_PAGES_REQUESTS times (default 200) after one warm-up request,
with a random district, unit, loan or commune of the store each time, by an officer of the scope that opens it.
The worklists are timed twice: as kept for the store's version, and as if the worker had just committed (none kept).
Prints p50 / p99 / max per page against the 50 ms p99 target; never asserts.
"""

from __future__ import annotations

import gc
import os
import random
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from tests.bench.api_bench import TARGET_P99_MS, percentile, store
from tests.bench.common import machine
from tests.kafka_broker import free_ports
from uythac.entrypoints.api import create_app
from uythac.entrypoints.api.auth import entry, new_key
from uythac.entrypoints.api.context import EXTENSION
from uythac.settings import Settings


def _signed_in(app: Flask, key: str) -> FlaskClient:
    client = app.test_client()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/trang/dang-nhap").get_data(as_text=True))
    assert token is not None
    assert client.post("/trang/dang-nhap", data={"csrf": token.group(1), "key": key}).status_code == 303
    return client


def main() -> None:
    db = store()
    count = int(os.environ.get("BENCH_PAGES_REQUESTS", "200"))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        units = connection.execute("SELECT district_id, commune_id, org FROM units").fetchall()
        loans = [row[0] for row in connection.execute("SELECT loan_id FROM loans WHERE status IS NOT NULL LIMIT 20000")]
    districts = sorted({d for d, _, _ in units})
    communes = sorted({c for _, c, _ in units})
    rng = random.Random(7)
    district, commune = rng.choice(districts), rng.choice(communes)
    scopes = {"all": "all", "district": f"district:{district}", "commune": f"commune:{commune}"}
    keys = {name: new_key() for name in scopes}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "keys.yaml"
        path.write_text("keys:\n" + "".join(entry(n, scopes[n], keys[n]) for n in scopes), encoding="utf-8")
        settings = Settings(
            db=str(db), api_keys_file=str(path), kafka_bootstrap=f"127.0.0.1:{free_ports(1)[0]}", pages_secret="b" * 32
        )
        app = create_app(settings)  # one app, as in one API process: its kept answers, its heap
        gc.collect()
        gc.freeze()  # as `uythac api`'s workers do once the app is built (entrypoints/api/server.py)
        clients = {name: _signed_in(app, keys[name]) for name in ("all", "district", "commune")}
        mine = [(c, o) for _, c, o in units if c == commune]
        kept = app.extensions[EXTENSION].pages

        def forget() -> None:  # as if the worker had just committed a batch: no list kept for the new version
            with kept._lock:
                kept._bodies.clear()
                kept.size = 0

        pages: list[tuple[str, str, Callable[[random.Random], str]]] = [
            ("province (the letter's table)", "all", lambda r: "/trang/tinh"),
            ("district (its units)", "all", lambda r: f"/trang/huyen/{r.choice(districts)}"),
            ("district, sorted by score", "district", lambda r: f"/trang/huyen/{district}?sort=score"),
            ("unit (xã)", "all", lambda r: "/trang/xa/{}/{}".format(*r.choice(units)[1:])),
            ("unit (xã), its commune's key", "commune", lambda r: "/trang/xa/{}/{}".format(*r.choice(mine))),
            ("loan", "all", lambda r: f"/trang/mon-vay/{r.choice(loans)}"),
            ("worklist, a commune", "commune", lambda r: "/trang/danh-sach"),
            ("worklist, a district", "district", lambda r: f"/trang/danh-sach?page={r.randint(1, 3)}"),
            ("worklist, the province", "all", lambda r: f"/trang/danh-sach?page={r.randint(1, 5)}"),
            ("worklist, a district, new version", "district", lambda r: f"/trang/danh-sach?page={r.randint(1, 3)}"),
            ("worklist, province, new version", "all", lambda r: f"/trang/danh-sach?page={r.randint(1, 5)}"),
            ("worklist .xlsx, a commune", "commune", lambda r: "/trang/danh-sach.xlsx"),
        ]
        print(f"pages' server time, {count} requests a page, {len(units)} units; {machine()}")
        print(f"{'page':34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  p99 ≤ {TARGET_P99_MS:g} ms")
        for name, scope, make in pages:
            client = clients[scope]
            assert client.get(make(rng)).status_code == 200, name  # warm-up: the kept answers and month ends
            times = []
            for _ in range(count):
                target = make(rng)
                if "new version" in name:
                    forget()
                start = time.perf_counter()
                response = client.get(target)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (target, response.status_code)
            p99 = percentile(times, 0.99)
            verdict = "yes" if p99 <= TARGET_P99_MS else "NO"
            print(f"{name:34} {percentile(times, 0.5):8.1f} {p99:8.1f} {max(times):8.1f}  {verdict}", flush=True)


if __name__ == "__main__":
    main()

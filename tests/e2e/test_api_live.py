"""The API as deployed: `uythac api` (gunicorn, two worker processes) on loopback, over the store a real
`uythac worker` fills from the session's Kafka broker; events posted to the API go through Kafka and the
worker and are read back. Last, schemathesis fuzzes every operation of `/openapi.json`.

One province, worker and server for the module (a generated two-commune half-year, ~4 500 events): the
read-only tests come first, the tests that post events after them, schemathesis last.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api_support import Keys, write_keys
from tests.kafka_broker import free_ports
from tests.pipeline import UYTHAC, Pipeline, keyed
from tests.support import ev, inspect, kept_reports, loan
from uythac.devtools import generate

pytestmark = pytest.mark.kafka

SCOPES = {"all": "all", "d01": "district:D01", "c0002": "commune:C0002"}
GETS = [
    "/v1/report",
    "/v1/distribution",
    "/v1/units?per_page=500",
    "/v1/units/C0001/HND",
    "/v1/communes/C0001",
    "/v1/flags?per_page=500",
    "/v1/worklist?within_days=30&per_page=500",
    "/v1/loans/{loan}",
]
LOAN_REQUESTS = 'uythac_api_request_seconds_count{method="GET",route="/v1/loans/<loan_id>",status="200"}'
SCHEMATHESIS_CONFIG = """\
[checks]
enabled = true  # every check schemathesis has

# Calendar validity (2023-02-30, year 0) is beyond JSON Schema: a body the schema allows may still be an
# invalid event, which the API rightly refuses (400), so that one check is off for POST /v1/events.
[[operations]]
include-path = "/v1/events"
checks.positive_data_acceptance.enabled = false
"""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class Api:
    """The running server, its keys, and the pipeline behind it."""

    base: str
    internal: str  # the API's internal address: /metrics and /readyz
    keys: Keys
    pipeline: Pipeline
    month_end: dict[str, Any]
    log: Path

    def call(self, method: str, path: str, key: str | None = "all", body: Any = None, bearer: str = "") -> Reply:
        """One request with the key of that name (None: no key; `bearer`: this token instead)."""
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {} if key is None else self.keys.header(key)
        data = None if body is None else orjson.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, dict(error.headers), error.read())

    def get(self, path: str, key: str = "all") -> Any:
        reply = self.call("GET", path, key)
        assert reply.status == 200, reply.body
        return reply.json

    def metric(self, line_start: str) -> float:
        """The value of the first /metrics sample whose line starts so (0 if there is none)."""
        with urllib.request.urlopen(self.internal + "/metrics", timeout=30) as response:
            text = response.read().decode()
        return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start)), 0.0)


def _month(line: bytes) -> str:
    """The line's business month ("" for a line that is not an event with a date)."""
    try:
        day = orjson.loads(line).get("occurred_at")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return day[:7] if isinstance(day, str) else ""


def until(check: Callable[[], bool], timeout_s: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    directory = tmp_path_factory.mktemp("api-live")
    source = directory / "province.jsonl"
    generate.write(source, generate.GenerateOptions(communes=2, months=6, seed=11))
    pipeline = Pipeline(kafka_bootstrap, directory)
    lines = source.read_bytes().splitlines()
    # The first month alone, then the rest: the worker's clock starts at the first event to arrive from any
    # partition, and a keyless line (a clock tick) of the last month read first would pass no month end.
    months = [_month(line) for line in lines]
    first = min(month for month in months if month)
    pipeline.produce(keyed([line for line, month in zip(lines, months, strict=True) if month == first]))
    pipeline.start_worker()
    try:
        pipeline.wait_caught_up()
        pipeline.produce(keyed([line for line, month in zip(lines, months, strict=True) if month != first]))
        pipeline.wait_caught_up()
        # The month ends the worker's clock passed: the latest one's report, as kept.
        kept = kept_reports(pipeline.db)
        assert kept, "the worker kept no month-end report"
        month_end = kept[max(kept)]
    except BaseException:
        pipeline.stop_workers()  # no worker left running for a later test to trip over
        raise
    keys = write_keys(directory, SCOPES)
    port, internal = free_ports(2)
    env = {
        **pipeline.env(),
        "UYTHAC_API_BIND": f"127.0.0.1:{port}",
        "UYTHAC_API_INTERNAL_BIND": f"127.0.0.1:{internal}",  # never the default 9103 of `make run`
        "UYTHAC_API_WORKERS": "2",
        "UYTHAC_API_KEYS_FILE": str(keys.path),
        "UYTHAC_API_READY_CLOCK_DAYS": "0",  # the province's clock is in 2023
        "UYTHAC_API_MAX_EVENTS": "20",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = directory / "api.log"
    with log.open("wb") as out:
        server = subprocess.Popen([UYTHAC, "api"], env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Api(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal}", keys, pipeline, month_end, log)
    try:
        until(lambda: _up(running), 30, f"the API to start; log:\n{log.read_text(errors='replace')[-3000:]}")
        yield running
    finally:
        server.send_signal(signal.SIGTERM)
        stopped = server.wait(timeout=30)
        pipeline.stop_workers()
        assert stopped == 0, log.read_text(errors="replace")[-3000:]  # a graceful stop, metrics dir removed


def _up(api: Api) -> bool:
    try:
        return api.call("GET", "/healthz", None).status == 200
    except OSError:
        return False


def _store_report(api: Api) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(api.pipeline.report())
    return report


# reading -----------------------------------------------------------------------------------------
def test_the_report_is_the_workers_store(api: Api) -> None:
    assert api.get("/v1/report") == _store_report(api)


def test_the_units_list_is_the_reports_units(api: Api) -> None:
    report = _store_report(api)
    units = api.get("/v1/units?per_page=500")
    assert units["total"] == len(report["units"]) and units["as_of"] == report["as_of"]
    assert [{k: v for k, v in u.items() if k != "open_flags"} for u in units["items"]] == report["units"]


def test_the_distribution_and_the_flags_are_the_reports(api: Api) -> None:
    report = _store_report(api)
    assert api.get("/v1/distribution")["distribution"] == report["distribution"]
    assert api.get("/v1/flags?per_page=500")["items"] == report["flags"]


def test_a_unit_lists_its_own_flags(api: Api) -> None:
    theirs = [f for f in _store_report(api)["flags"] if (f["commune_id"], f["org"]) == ("C0001", "HND")]
    unit = api.get("/v1/units/C0001/HND")
    assert unit["open_flags"] == len(unit["flags"]) == len(theirs)


def test_a_flagged_loan_reads_missed(api: Api) -> None:
    first = _store_report(api)["flags"][0]
    assert api.get(f"/v1/loans/{first['loan_id']}")["status"] == "missed"


def test_the_worklist_comes_missed_first_then_by_deadline(api: Api) -> None:
    worklist = api.get("/v1/worklist?within_days=30&per_page=500")["items"]
    order = [(w["status"] != "missed", w["deadline"]) for w in worklist]
    assert order == sorted(order)
    assert {w["duty"] for w in worklist} == {"new_loan", "inactive_loan", "group_of_year"}


def test_the_api_is_ready_once_the_worker_caught_up(api: Api) -> None:
    with urllib.request.urlopen(api.internal + "/readyz", timeout=30) as response:
        assert orjson.loads(response.read())["status"] == "ready"
    assert api.call("GET", "/readyz").status == 404  # not on the callers' address


def test_pages_filters_and_past_month_ends(api: Api) -> None:
    report = _store_report(api)
    pages = [api.get(f"/v1/flags?per_page=7&page={n}") for n in range(1, 100)]
    flags = [flag for page in pages for flag in page["items"]]
    assert flags == report["flags"] and all(p["total"] == len(flags) for p in pages)
    assert {f["commune_id"] for f in api.get("/v1/flags?commune_id=C0002&per_page=500")["items"]} == {"C0002"}
    assert {u["org"] for u in api.get("/v1/units?org=HPN")["items"]} == {"HPN"}
    assert api.get(f"/v1/report?as_of={api.month_end['as_of']}") == api.month_end
    missing = api.call("GET", "/v1/report?as_of=2023-04-29")
    assert missing.status == 404 and api.month_end["as_of"] in missing.json["available"]
    bad = api.call("GET", "/v1/units?per_page=1000")
    assert bad.status == 400 and bad.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("path", GETS)
def test_keys_and_scopes_on_every_endpoint(api: Api, path: str) -> None:
    report = _store_report(api)
    path = path.format(loan=next(f["loan_id"] for f in report["flags"] if f["district_id"] == "D02"))
    missing = api.call("GET", path, None)
    assert missing.status == 401 and missing.headers["WWW-Authenticate"] == 'Bearer realm="uythac"'
    assert api.call("GET", path, bearer="uythac_forged").status == 401
    whole = api.call("GET", path)
    assert whole.status == 200
    for key, district in (("d01", "D01"), ("c0002", "D02")):
        scoped = api.call("GET", path, key)
        one = path.startswith(("/v1/units/", "/v1/loans/", "/v1/communes/"))
        if one:  # one resource: seen in its area, 404 elsewhere
            assert scoped.status == (200 if whole.json["district_id"] == district else 404)
        else:  # a list: the whole answer's entries of that district, no more, no fewer
            assert scoped.status == 200
            for name in ("items", "units", "flags", "districts"):
                if name in whole.json:
                    mine = [entry for entry in whole.json[name] if entry["district_id"] == district]
                    assert scoped.json[name] == mine


# writing ------------------------------------------------------------------------------------------
def test_posting_events_needs_a_key_of_their_area(api: Api) -> None:
    today = date.fromisoformat(api.get("/v1/report")["as_of"])
    event = loan("API-L0", today)  # in D01/C0001/HND
    assert api.call("POST", "/v1/events", None, event).status == 401
    assert api.call("POST", "/v1/events", "c0002", event).status == 403  # C0001 is not C0002


def test_posted_events_reach_the_worker_and_read_back(api: Api) -> None:
    today = date.fromisoformat(api.get("/v1/report")["as_of"])
    flags_before = api.metric('uythac_open_flags{district_id="D01"}')
    fresh = loan("API-L1", today)  # in D01/C0001/HND
    late = loan("API-L2", today - timedelta(days=40))  # its deadline has passed: a new flag
    accepted = api.call("POST", "/v1/events", "d01", [fresh, late])
    assert accepted.status == 202, accepted.body
    assert accepted.json == {"accepted": 2, "event_ids": [fresh["event_id"], late["event_id"]]}
    until(lambda: api.call("GET", "/v1/loans/API-L1").status == 200, what="the worker to apply API-L1")
    assert api.get("/v1/loans/API-L1")["status"] in ("pending", "due_soon")
    assert api.get("/v1/loans/API-L2")["status"] == "missed"
    assert api.metric('uythac_open_flags{district_id="D01"}') == flags_before + 1


def test_a_posted_inspection_fulfils_its_loan(api: Api) -> None:
    today = date.fromisoformat(api.get("/v1/report")["as_of"])
    assert api.call("POST", "/v1/events", "all", loan("API-L3", today)).status == 202
    assert api.call("POST", "/v1/events", "all", inspect("API-L3", today)).status == 202
    until(lambda: api.call("GET", "/v1/loans/API-L3").status == 200, what="the worker to apply API-L3")
    until(lambda: api.get("/v1/loans/API-L3")["status"] == "fulfilled", what="the inspection to fulfil API-L3")
    assert api.get("/v1/loans/API-L3")["inspected_on"] == today.isoformat()


def test_every_process_counts_the_requests_it_served(api: Api) -> None:
    loan_id = _store_report(api)["flags"][0]["loan_id"]
    before = api.metric(LOAN_REQUESTS)
    for _ in range(6):
        api.get(f"/v1/loans/{loan_id}")
    assert api.metric(LOAN_REQUESTS) >= before + 6  # whichever gunicorn worker served each


def test_invalid_events_name_their_fields(api: Api) -> None:
    bad = ev("loan.disbursed", "2023-05-01", loan_id="X" * 65, group_id="G1", amount=-1)
    reply = api.call("POST", "/v1/events", "all", [bad])
    assert reply.status == 400
    assert [e["field"] for e in reply.json["errors"]] == ["0.amount", "0.loan_id"]
    too_many = api.call("POST", "/v1/events", "all", [bad] * 21)
    assert too_many.status == 400 and "1 to 20 events" in too_many.json["detail"]


def test_requests_are_logged_without_keys(api: Api) -> None:
    lines = [orjson.loads(line) for line in api.log.read_bytes().splitlines() if b'"msg": "request"' in line]
    assert {"method", "route", "status", "ms", "key"} <= set(lines[-1])
    assert {line["key"] for line in lines} >= {"all", "d01", None}
    text = api.log.read_text()
    assert not any(key in text for key in api.keys.keys.values())


# fuzzing, last: its valid events reach the worker too -------------------------------------------------
def test_schemathesis_finds_no_server_error_and_no_schema_violation(api: Api, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG, encoding="utf-8")
    done = subprocess.run(
        [
            str(Path(UYTHAC).with_name("schemathesis")),
            "--config-file",
            str(config),
            "run",
            f"{api.base}/openapi.json",
            "--header",
            f"Authorization: Bearer {api.keys.keys['all']}",
            "--max-examples",
            "25",
            "--seed",
            "20240105",
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]

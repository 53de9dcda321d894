"""`uythac api` as deployed, under gunicorn on loopback (no Kafka needed): the process model holds (a key reload
and a worker's exit keep the API up, a bad keys file is refused and the keys in force stay), the operators'
endpoints answer on the internal address only, and abuse gets clear 4xx problems, never a 500 or an HTML page.
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api_support import Keys, write_keys
from tests.kafka_broker import free_ports
from tests.pipeline import UYTHAC
from tests.support import group, loan, replay_into, tick
from uythac.entrypoints.api.auth import entry, new_key

EVENTS = [group("G1", "2024-01-01"), loan("L1", "2024-01-02"), loan("L2", "2024-03-01"), tick("2024-03-31")]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    internal: int
    keys: Keys
    log: Path

    def request(
        self, method: str, path: str, key: str | None = "all", body: bytes | None = None, port: int | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {} if key is None else dict(self.keys.header(key))
        if body is not None:
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("api-server")
    db = directory / "store.db"
    replay_into(db, EVENTS)
    keys = write_keys(directory)
    port, internal = free_ports(2)
    env = {
        **os.environ,
        "UYTHAC_DB": str(db),
        "UYTHAC_API_BIND": f"127.0.0.1:{port}",
        "UYTHAC_API_INTERNAL_BIND": f"127.0.0.1:{internal}",
        "UYTHAC_API_WORKERS": "2",
        "UYTHAC_API_KEYS_FILE": str(keys.path),
        "UYTHAC_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_ports(1)[0]}",  # nothing there
        "UYTHAC_API_PRODUCE_TIMEOUT_MS": "500",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = directory / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen([UYTHAC, "api"], env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Server(process, port, internal, keys, log)
    try:
        _until(lambda: _up(running), f"the API to start; log:\n{log.read_text(errors='replace')[-3000:]}")
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text(errors="replace")[-3000:]


def _up(server: Server) -> bool:
    try:
        return server.request("GET", "/healthz", None)[0] == 200 and len(server.workers()) == 2
    except OSError:
        return False


def _until(check: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _answer(raw: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of the one answer on a raw connection: read until its Content-Length is in."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        more = raw.recv(65536)
        if not more:
            break
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def _problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, body[:500]
    assert headers["content-type"] == "application/problem+json", headers
    document: dict[str, Any] = orjson.loads(body)
    assert document["status"] == expected
    return document


# the operators' endpoints -----------------------------------------------------------------------------
def test_metrics_and_readiness_answer_on_the_internal_address_only(server: Server) -> None:
    for path in ("/metrics", "/readyz"):
        _problem(*server.request("GET", path, None), 404)
        status, _, _ = server.request("GET", path, None, port=server.internal)
        assert status in (200, 503)  # /readyz: no worker has written a heartbeat to this store
    assert server.request("GET", "/healthz", None)[0] == 200
    metrics = server.request("GET", "/metrics", None, port=server.internal)[2].decode()
    assert "uythac_api_request_seconds" in metrics
    assert "uythac_clock_lag_seconds" not in metrics and "uythac_events_total" not in metrics  # the worker's


def test_any_method_counts_under_a_few_label_values(server: Server) -> None:
    rng = random.Random(5)
    for _ in range(200):
        method = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))
        status, _, _ = server.request(method, "/v1/units", None)
        assert status in (400, 401, 405, 501)
    metrics = server.request("GET", "/metrics", None, port=server.internal)[2].decode()
    methods = {line.split('method="')[1].split('"')[0] for line in metrics.splitlines() if 'method="' in line}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}, methods


# abuse gets clear problems -----------------------------------------------------------------------------
def test_gunicorns_own_errors_are_problems_too(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = _answer(raw)
    assert head.startswith(b"HTTP/1.1 414") and b"application/problem+json" in head, head
    assert orjson.loads(body)["status"] == 414
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"NOT A REQUEST LINE\r\n\r\n")
        head, body = _answer(raw)
    assert head.startswith(b"HTTP/1.1 400") and orjson.loads(body)["status"] == 400


def test_json_nested_deeper_than_events_go_is_400_not_500(server: Server) -> None:
    for depth in (300, 1100):
        nested = b"[" * depth + b"]" * depth
        body = b'{"event_id": "e1", "type": "clock.tick", "occurred_at": "2024-03-31", "x": ' + nested + b"}"
        _problem(*server.request("POST", "/v1/events", body=body), 400)


def test_a_chunked_body_over_the_limit_is_refused_with_413(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as raw:
        raw.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {server.keys.keys['all']}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"[" + b" " * (1 << 20)
        with_size = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        try:
            for _ in range(18):  # 18 MiB, over the 16 MiB the API takes
                raw.sendall(with_size)
            raw.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while sending: the answer is already there
        head, body = _answer(raw)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert orjson.loads(body)["status"] == 413


@pytest.mark.parametrize("page", ["١", "１", "1_0", "+2", "-1", "2.0"])
def test_page_numbers_are_ascii_digits(server: Server, page: str) -> None:
    from urllib.parse import quote

    document = _problem(*server.request("GET", f"/v1/units?page={quote(page)}"), 400)
    assert document["errors"][0]["field"] == "page"


@pytest.mark.parametrize("path", ["/v1/units/C0001/HND?bogus=1", "/v1/loans/L1?bogus=1"])
def test_detail_endpoints_refuse_unknown_parameters(server: Server, path: str) -> None:
    document = _problem(*server.request("GET", path), 400)
    assert document["errors"] == [{"field": "bogus", "detail": "not a parameter of this endpoint"}]


# the process model ------------------------------------------------------------------------------------
def test_a_worker_that_exits_under_load_takes_nothing_down(server: Server) -> None:
    """A worker's exit used to remove the metrics folder all workers share: the next workers failed to boot and
    the master exited."""

    def get(_: int) -> int:
        try:
            return server.request("GET", "/v1/distribution")[0]
        except OSError:
            return 0

    killed = server.workers()[0]
    with ThreadPoolExecutor(8) as pool:
        first = pool.map(get, range(150))
        os.kill(killed, signal.SIGTERM)
        statuses = list(first) + list(pool.map(get, range(300)))
    _until(lambda: killed not in server.workers() and _up(server), "the master to replace the worker")
    time.sleep(2.0)  # a replacement that cannot boot makes the master exit within this
    assert server.process.poll() is None, "the master is up"
    assert len(server.workers()) == 2 and killed not in server.workers()
    assert statuses.count(200) >= len(statuses) - 8, statuses.count(200)  # at most the requests it held
    assert [get(n) for n in range(100)] == [200] * 100  # both workers serve, the replacement too
    assert server.request("GET", "/metrics", None, port=server.internal)[0] == 200


def test_a_key_added_and_revoked_by_the_command_works_and_stops_at_the_next_sighup(server: Server) -> None:
    original = server.keys.path.read_text(encoding="utf-8")
    path = str(server.keys.path)

    def status(key: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request("GET", "/v1/units", headers={"Authorization": f"Bearer {key}"})
            return connection.getresponse().status
        except OSError:
            return 0
        finally:
            connection.close()

    try:
        command = ["--name", "hnd-d01", "--scope", "district:D01,org:HND", "--days", "1", "--keys-file", path]
        made = subprocess.run([UYTHAC, "apikey", *command], capture_output=True, text=True, check=True)
        key = made.stdout.splitlines()[0]
        server.process.send_signal(signal.SIGHUP)
        _until(lambda: status(key) == 200, "the added key to work after SIGHUP")
        subprocess.run([UYTHAC, "apikey", "revoke", "hnd-d01", "--keys-file", path], check=True, capture_output=True)
        server.process.send_signal(signal.SIGHUP)
        _until(lambda: status(key) == 401, "the revoked key to be refused after SIGHUP")
        assert server.request("GET", "/v1/units")[0] == 200  # the other keys stay
    finally:
        server.keys.path.write_text(original, encoding="utf-8")
        server.process.send_signal(signal.SIGHUP)
        _until(lambda: _up(server), "the workers to serve")


def test_sighup_reloads_the_keys_and_a_bad_keys_file_keeps_the_keys_in_force(server: Server) -> None:
    new = new_key()
    original = server.keys.path.read_text(encoding="utf-8")
    server.keys.path.write_text(original + entry("new", "all", new), encoding="utf-8")
    server.process.send_signal(signal.SIGHUP)

    def new_key_works() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request("GET", "/v1/distribution", headers={"Authorization": f"Bearer {new}"})
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    _until(new_key_works, "the new key to work after SIGHUP")
    server.keys.path.write_text("keys: [{name: broken", encoding="utf-8")
    server.process.send_signal(signal.SIGHUP)
    _until(lambda: b"API keys file not reloaded" in server.log.read_bytes(), "the bad keys file to be logged")
    time.sleep(2.0)  # the new workers have started by now
    assert server.process.poll() is None, "the master is still up"
    _until(lambda: _up(server), "the workers to serve")
    assert new_key_works() and server.request("GET", "/v1/distribution")[0] == 200  # the keys in force stayed
    server.keys.path.write_text(original, encoding="utf-8")

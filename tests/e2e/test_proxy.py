"""The reverse proxy as deployed: nginx (deploy/nginx/nginxctl, the project's template) in front of a real
`uythac api` (gunicorn, 2 workers x 4 threads) over a tiny store made by `uythac replay`. No Kafka.

The finding it answers: a gthread thread reads a request's headers and body itself, however slowly they
come, so a few slow clients held every gunicorn thread and the API stopped answering. Behind nginx, slow
clients hold nginx connections: nginx hands gunicorn only whole requests. The control test points the same
slow clients at gunicorn directly and sees it stall, so the main test cannot pass by accident.

One API and one nginx for the module; both are stopped in the fixture's teardown (and nginxctl's watcher
stops nginx if this process dies without it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.api_support import Keys, write_keys
from tests.kafka_broker import free_ports
from tests.pipeline import UYTHAC
from tests.proxy_support import NGINXCTL, SLOW_BODIES, SLOW_HEADERS, run_nginxctl, slow_clients
from tests.support import group, inspect, loan, tick, write_lines

MAX_BODY = 16 * 1024 * 1024
NORMAL_REQUESTS = 30
ANSWER_WITHIN_S = 2.0


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    seconds: float

    @property
    def json(self) -> object:
        return orjson.loads(self.body)


def exchange(port: int, raw: bytes, timeout_s: float = 10.0) -> Reply:
    """Send `raw` on a new connection to 127.0.0.1:`port` and read one answer (the server closes, or
    Content-Length says where it ends)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)  # a server refusing a large body may answer and stop reading before its end
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _expected_length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return Reply(int(status_line.split()[1]), headers, body, time.monotonic() - start)


def _expected_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return 1 << 62  # no length: read until the server closes


def get(port: int, path: str, key: str = "", timeout_s: float = 10.0) -> Reply:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    return exchange(port, request.encode(), timeout_s)


def is_problem(reply: Reply, status: int) -> bool:
    body = reply.json
    return (
        reply.status == status
        and reply.headers.get("content-type") == "application/problem+json"
        and isinstance(body, dict)
        and body.get("status") == status
        and {"type", "title", "detail"} <= set(body)
    )


def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass
class Proxied:
    api_port: int  # gunicorn, directly
    proxy_port: int  # nginx in front of it
    keys: Keys
    nginx_dir: Path
    api_log: Path

    def nginxctl(self, command: str, **settings: str) -> subprocess.CompletedProcess[str]:
        return run_nginxctl(command, self.nginx_env(**settings))

    def nginx_env(self, **settings: str) -> dict[str, str]:
        env = {
            **os.environ,
            "UYTHAC_NGINX_DIR": str(self.nginx_dir),
            "UYTHAC_NGINX_PORT": str(self.proxy_port),
            "UYTHAC_NGINX_UPSTREAM": f"127.0.0.1:{self.api_port}",
            "UYTHAC_NGINX_STOP_WITH_PID": str(os.getpid()),
        }
        if os.geteuid() == 0:
            # pytest's temporary folders are private to their owner (0700), so no other worker user could
            # reach the data dir's temp files: the workers stay root here, for these tests only.
            env["UYTHAC_NGINX_USER"] = "root"
        return {**env, **settings}


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    directory = tmp_path_factory.mktemp("proxy")
    db = directory / "uythac.db"
    events = write_lines(
        directory / "events.jsonl",
        [group("G1", "2023-09-01"), loan("L1", "2023-09-05"), inspect("L1", "2023-09-20"), tick("2023-10-31")],
    )
    subprocess.run(
        [UYTHAC, "replay", str(events), "--db", str(db), "--report", str(directory / "report.json")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    keys = write_keys(directory)
    api_port, proxy_port, internal_port = free_ports(3)
    env = {
        **os.environ,
        "UYTHAC_DB": str(db),
        "UYTHAC_API_BIND": f"127.0.0.1:{api_port}",
        "UYTHAC_API_INTERNAL_BIND": f"127.0.0.1:{internal_port}",  # never the default 9103 of `make run`
        "UYTHAC_API_WORKERS": "2",
        "UYTHAC_API_THREADS": "4",
        "UYTHAC_API_KEYS_FILE": str(keys.path),
        "UYTHAC_API_READY_CLOCK_DAYS": "0",
        "UYTHAC_KAFKA_BOOTSTRAP": "127.0.0.1:9",  # nothing here posts a whole event
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    api_log = directory / "api.log"
    with api_log.open("wb") as out:
        server = subprocess.Popen([UYTHAC, "api"], env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Proxied(api_port, proxy_port, keys, directory / "nginx", api_log)
    try:
        until(lambda: _answers(api_port), 30, f"the API to start; log:\n{api_log.read_text(errors='replace')[-3000:]}")
        if not os.access(NGINXCTL, os.X_OK):
            pytest.fail(f"{NGINXCTL} is missing or not executable", pytrace=False)
        started = running.nginxctl("up")
        assert started.returncode == 0, started.stdout + started.stderr
        yield running
    finally:
        stopped = running.nginxctl("down")
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert running.nginxctl("status").returncode == 3


def _answers(port: int) -> bool:
    try:
        return get(port, "/healthz", timeout_s=2).status == 200
    except OSError:
        return False


# --- slow clients ------------------------------------------------------------------------------------------


def normal_request(port: int, n: int, key: str) -> Reply | str:
    """A /healthz or a keyed /v1/distribution, alternately: the reply, or what went wrong."""
    path = "/healthz" if n % 2 == 0 else "/v1/distribution"
    try:
        return get(port, path, key if n % 2 else "", timeout_s=ANSWER_WITHIN_S)
    except OSError as error:  # a timeout included
        return f"{path}: {type(error).__name__} {error}"


def test_slow_clients_do_not_hold_the_api_behind_the_proxy(proxied: Proxied) -> None:
    key = proxied.keys.keys["all"]
    with slow_clients(proxied.proxy_port, key) as clients:
        replies = [normal_request(proxied.proxy_port, n, key) for n in range(NORMAL_REQUESTS)]
        assert clients.sent >= 3, "the slow clients were still sending"
    failed = [r if isinstance(r, str) else f"{r.status} in {r.seconds:.2f} s" for r in replies if not _fine(r)]
    assert not failed, f"{len(failed)} of {NORMAL_REQUESTS} normal requests failed behind nginx: {failed}"
    slowest = max(r.seconds for r in replies if isinstance(r, Reply))
    print(f"behind nginx, {SLOW_HEADERS + SLOW_BODIES} slow clients: slowest normal request {slowest * 1000:.0f} ms")


def test_without_the_proxy_the_same_slow_clients_stall_gunicorn(proxied: Proxied) -> None:
    """The control: the same clients straight at gunicorn hold its 8 threads, and normal requests wait."""
    key = proxied.keys.keys["all"]
    with slow_clients(proxied.api_port, key), ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda n: normal_request(proxied.api_port, n, key), range(6)))
    stalled = [r if isinstance(r, str) else f"{r.status} in {r.seconds:.2f} s" for r in replies if not _fine(r)]
    assert stalled, f"gunicorn answered every request in time despite the slow clients: {replies}"
    print(f"gunicorn directly, {SLOW_HEADERS + SLOW_BODIES} slow clients: {len(stalled)} of 6 stalled: {stalled}")
    # gunicorn recovers once the slow clients are gone (so the other tests see a healthy API)
    until(lambda: _answers(proxied.api_port), 30, "gunicorn to answer again")


def _fine(reply: Reply | str) -> bool:
    return isinstance(reply, Reply) and reply.status == 200 and reply.seconds < ANSWER_WITHIN_S


# --- limits and error answers --------------------------------------------------------------------------------


def test_a_body_over_16_mib_with_a_length_is_refused_by_the_proxy(proxied: Proxied) -> None:
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {proxied.keys.keys['all']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n"
    )
    reply = exchange(proxied.proxy_port, head.encode())  # refused on the header alone: no body sent
    assert is_problem(reply, 413), reply
    assert "16 MiB" in str(reply.json)


def test_a_chunked_body_over_16_mib_is_refused_by_the_proxy(proxied: Proxied) -> None:
    chunk = b"x" * (1024 * 1024)
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {proxied.keys.keys['all']}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(17)) + b"0\r\n\r\n"
    reply = exchange(proxied.proxy_port, head + body, timeout_s=30)
    assert is_problem(reply, 413), reply
    assert b'"status": 413' not in proxied.api_log.read_bytes()  # the proxy refused it, not gunicorn


def test_metrics_and_readiness_are_not_served_through_the_proxy(proxied: Proxied) -> None:
    for path in ("/metrics", "/readyz", "/metrics/", "/readyz?x=1", "/%6detrics"):
        assert is_problem(get(proxied.proxy_port, path), 404), path
    assert get(proxied.proxy_port, "/healthz").status == 200  # the rest is the API's


def test_a_request_line_over_the_limit_is_refused_by_the_proxy(proxied: Proxied) -> None:
    reply = get(proxied.proxy_port, "/v1/units?district_id=" + "D" * 9000)
    assert is_problem(reply, 414), reply


def test_a_header_over_the_limit_is_refused_by_the_proxy(proxied: Proxied) -> None:
    raw = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {'b' * 9000}\r\n\r\n".encode()
    assert is_problem(exchange(proxied.proxy_port, raw), 431)


def test_the_apis_own_answers_pass_through(proxied: Proxied) -> None:
    """The proxy adds nothing to the API's answers: its own problems (401 here) and its JSON."""
    unauthorized = get(proxied.proxy_port, "/v1/distribution")
    assert is_problem(unauthorized, 401)
    assert "uythac" in str(unauthorized.json)  # the API's problem type, not the proxy's about:blank
    distribution = get(proxied.proxy_port, "/v1/distribution", proxied.keys.keys["all"])
    assert distribution.status == 200 and distribution.headers["content-type"] == "application/json"


def test_a_stopped_api_is_a_502_problem(proxied: Proxied, tmp_path: Path) -> None:
    """nginx in front of nothing: the caller learns, as a problem, that the API is not answering."""
    port, dead = free_ports(2)
    env = proxied.nginx_env(UYTHAC_NGINX_DIR=str(tmp_path / "nginx"), UYTHAC_NGINX_PORT=str(port))
    env["UYTHAC_NGINX_UPSTREAM"] = f"127.0.0.1:{dead}"
    started = run_nginxctl("up", env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        reply = get(port, "/healthz")
        assert is_problem(reply, 502) and "not answering" in str(reply.json), reply
        access = tmp_path / "nginx" / "logs" / "access.log"
        until(lambda: access.read_text() != "", 5, "the access log line")  # written once the answer is sent
        [line] = access.read_text().splitlines()  # one JSON line per request (not nginxctl's probes)
        assert orjson.loads(line)["status"] == 502
    finally:
        stopped = run_nginxctl("down", env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout


# --- nginxctl ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"UYTHAC_NGINX_PORT": "80x"}, "not a number"),
        ({"UYTHAC_NGINX_UPSTREAM": "api"}, "must be host:port or unix:/path"),
        ({"UYTHAC_NGINX_BIN": "/nonexistent/nginx"}, "is not an executable file"),
    ],
)
def test_nginxctl_fails_in_one_line(proxied: Proxied, tmp_path: Path, settings: dict[str, str], says: str) -> None:
    env = proxied.nginx_env(UYTHAC_NGINX_DIR=str(tmp_path / "nginx"), **settings)
    done = run_nginxctl("up", env)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("nginxctl: error: ") and says in done.stderr


def test_nginxctl_refuses_a_port_in_use(proxied: Proxied, tmp_path: Path) -> None:
    env = proxied.nginx_env(UYTHAC_NGINX_DIR=str(tmp_path / "nginx"), UYTHAC_NGINX_PORT=str(proxied.api_port))
    done = run_nginxctl("up", env)
    assert done.returncode == 1 and "already in use" in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root and runuser")
def test_nginxctl_as_root_refuses_a_data_dir_its_workers_cannot_reach(proxied: Proxied, tmp_path: Path) -> None:
    env = proxied.nginx_env(UYTHAC_NGINX_DIR=str(tmp_path / "nginx"), UYTHAC_NGINX_PORT=str(free_ports(1)[0]))
    del env["UYTHAC_NGINX_USER"]  # the default, www-data or nobody, cannot enter pytest's 0700 folders
    done = run_nginxctl("up", env)
    assert done.returncode == 1 and "cannot reach" in done.stderr and done.stderr.count("\n") == 1

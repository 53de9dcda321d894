"""Slow clients and the project's nginx, for the proxy's tests and the API benchmark's abuse cases."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NGINXCTL = ROOT / "deploy" / "nginx" / "nginxctl"
SLOW_HEADERS = 50  # clients sending their request header one byte every BYTE_EVERY_S
SLOW_BODIES = 20  # clients sending whole headers, then their body one byte every BYTE_EVERY_S
BYTE_EVERY_S = 0.3


class SlowClients:
    """Connections that each send a request one byte every BYTE_EVERY_S, on one thread, until stopped:
    `headers` of them trickle their request header; `bodies` of them send a whole header for a
    POST /v1/events with a valid key, then trickle the body."""

    def __init__(self, port: int, headers: int, bodies: int, key: str) -> None:
        self.sockets: list[tuple[socket.socket, bytes]] = []
        header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 4000 + b"\r\n\r\n"
        body = b'{"event_id": "slow", "type": "clock.tick", "occurred_at": "2023-11-01"}' + b" " * 4000
        post = (
            f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            for n in range(headers + bodies):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                self.sockets.append((sock, header if n < headers else body))
                if n >= headers:
                    sock.sendall(post)
        except BaseException:
            self.close()
            raise
        self.sent = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stopping.is_set():
            for sock, data in self.sockets:
                with contextlib.suppress(OSError):  # a server may close a slow client: that is its right
                    sock.send(data[self.sent : self.sent + 1])
            self.sent += 1
            self.stopping.wait(BYTE_EVERY_S)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.close()

    def close(self) -> None:
        for sock, _ in self.sockets:
            sock.close()


@contextlib.contextmanager
def slow_clients(port: int, key: str) -> Iterator[SlowClients]:
    clients = SlowClients(port, SLOW_HEADERS, SLOW_BODIES, key)
    try:
        time.sleep(3 * BYTE_EVERY_S)  # every connection has sent something: a gthread server has taken each up
        yield clients
    finally:
        clients.stop()


def run_nginxctl(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # the first run on a machine may install nginx with apt-get
    return subprocess.run([str(NGINXCTL), command], env=env, capture_output=True, text=True, timeout=300, check=False)

"""One real Kafka broker per test session, for the tests marked `kafka` (registered in tests/conftest.py).

The broker is the project's own (deploy/kafka/kafkactl): Apache Kafka from Maven Central, run with plain
`java`, no docker. The session's broker has its own data dir under pytest's temporary directory and its
own two ports, picked free at start, so it never touches the developer's broker (var/kafka, 19092).
It is started lazily, by the first test that asks for `kafka_bootstrap` or `kafka_broker`, and stopped at
the end of the session; kafkactl also stops it if the pytest process dies without tearing down.

    def test_something(kafka_bootstrap: str) -> None: ...      # "127.0.0.1:<port>"
    def test_restart(kafka_broker: KafkaBroker) -> None:       # stop() / start() keep the data
"""

from __future__ import annotations

import os
import socket
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # kafka-python 3.0.12 loads its protocol schemas at import time with importlib.resources.read_text
    # and open_text, deprecated since Python 3.11, and pytest turns warnings into errors. Importing it
    # here, once, before any test module, keeps that one warning out without hiding any other.
    warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
    import kafka
    import kafka.admin  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
KAFKACTL = ROOT / "deploy" / "kafka" / "kafkactl"
# A test broker needs start-up speed, not peak throughput: the C1 JIT alone starts about twice as fast.
JAVA_OPTS = "-XX:TieredStopAtLevel=1"
HEAP = "384m"


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (all held open together, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class BrokerError(RuntimeError):
    """kafkactl failed; the message holds its output (and the broker's log tail)."""


@dataclass
class KafkaBroker:
    """A broker run by deploy/kafka/kafkactl with its own data dir and ports; stop/start keep the data."""

    data_dir: Path
    port: int
    controller_port: int
    java_opts: str = JAVA_OPTS
    heap: str = HEAP

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _kafkactl(self, command: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "UYTHAC_KAFKA_DIR": str(self.data_dir),
            "UYTHAC_KAFKA_PORT": str(self.port),
            "UYTHAC_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "UYTHAC_KAFKA_HEAP": self.heap,
            "UYTHAC_KAFKA_JAVA_OPTS": self.java_opts,
            "UYTHAC_KAFKA_STOP_WITH_PID": str(os.getpid()),
        }
        return subprocess.run(
            [str(KAFKACTL), command], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )

    def _check(self, command: str, timeout_s: float) -> None:
        done = self._kafkactl(command, timeout_s)
        if done.returncode != 0:
            raise BrokerError(f"kafkactl {command} failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        """Start the broker (a no-op if it runs) and return once it serves clients."""
        # The first run of all may also download Kafka (~45 MB) from Maven Central.
        self._check("up", timeout_s=300)

    def stop(self) -> None:
        """Stop the broker cleanly (SIGTERM; SIGKILL after 20 s). Its data stays for the next start()."""
        self._check("down", timeout_s=60)

    def running(self) -> bool:
        return self._kafkactl("status", timeout_s=30).returncode == 0


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """The session's broker, started on first use and stopped at the end of the session."""
    if not os.access(KAFKACTL, os.X_OK):
        pytest.fail(f"{KAFKACTL} is missing or not executable", pytrace=False)
    broker: KafkaBroker | None = None
    error: BrokerError | None = None
    for _ in range(3):  # a port picked free may be taken by someone else before the broker binds it
        # a fresh data dir each time: nothing half-made by a failed attempt is reused
        broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), *free_ports(2))
        try:
            broker.start()
            error = None
            break
        except BrokerError as failure:
            error = failure
            if "already in use" not in str(failure):
                break
    if error is not None or broker is None:
        pytest.fail(f"could not start the test Kafka broker: {error}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    """`host:port` of the session's broker."""
    return kafka_broker.bootstrap

"""pytest configuration: hypothesis profiles (CI runs the same number of examples as a developer), and no test
leaves a Kafka producer running behind it."""

import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.support import Stores

# the session's Kafka broker (fixtures `kafka_bootstrap`, `kafka_broker`) for the tests marked `kafka`
pytest_plugins = ["tests.kafka_broker", "tests.postgres_server"]

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
settings.load_profile("default")


def _producer_threads() -> list[str]:
    """kafka-python names a producer's sender thread `<client_id>-network-thread`."""
    return [t.name for t in threading.enumerate() if t.name.endswith("-network-thread") and t.is_alive()]


@pytest.fixture(autouse=True)
def no_producer_left_running() -> Iterator[None]:
    """A producer left open calls its broker for the rest of the session; once that broker is stopped, each
    failed connection leaves a socket for the garbage collector, whose warning then fails an unrelated test."""
    before = set(_producer_threads())
    yield
    deadline = time.monotonic() + 10  # a producer closed on the side (the API's failed one) takes a moment
    while (left := set(_producer_threads()) - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"Kafka producers left running: {sorted(left)}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test on both stores: `tests.support.new_store` (and `report_of`) make SQLite files, then schemas
    on the session's PostgreSQL (started on first use). Modules take it with
    `pytestmark = pytest.mark.usefixtures("store_kind")`."""
    if request.param == "postgresql":
        Stores.postgres = request.getfixturevalue("postgres_server")
    try:
        yield request.param
    finally:
        Stores.postgres = None

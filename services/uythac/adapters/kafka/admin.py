"""Kafka housekeeping the worker does before it consumes: wait for the broker, make sure the topics exist.

Why here and not in the broker: the broker runs with `auto.create.topics.enable=false` (a typo in a topic
name must fail, not create a 1-partition topic), so the topics are created explicitly, with the partition
count the worker is written for. `uythac.events` is keyed by commune_id; its partition count fixes which
commune goes to which partition, and therefore which worker owns which communes. Kafka can add partitions
but never remove them, and adding them moves keys: `ensure_topics` never changes an existing topic, it only
warns when one has fewer partitions than asked for (an operator decides, not the worker at start-up).

Both functions open a short-lived admin client and close it; they are for start-up, not for the hot path.
"""

from __future__ import annotations

import gc
import logging
import socket
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, NoError, TopicAlreadyExistsError, for_code

log = logging.getLogger(__name__)
T = TypeVar("T")

# One attempt inside wait_for_broker never waits longer than this, so a broker that comes up while we
# wait is noticed within about a second.
_ATTEMPT_S = 1.0


def _admin(bootstrap: str, timeout_s: float) -> Any:
    timeout_ms = max(int(timeout_s * 1000), 100)
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="uythac-admin",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=max(timeout_ms, 1000),
            reconnect_backoff_ms=50,
            reconnect_backoff_max_ms=500,
        )
    except KafkaError as error:
        failure = error.with_traceback(None)  # its frames hold the half-built client
    _reap_half_built_clients()
    raise failure


def _addresses(bootstrap: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (IPv6 as `[::1]:9092`) as (host, port) pairs; the port defaults to 9092."""
    addresses = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            host, port = server.strip(), "9092"
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def _port_open(bootstrap: str, timeout_s: float) -> bool:
    for address in _addresses(bootstrap):
        try:
            with socket.create_connection(address, timeout=timeout_s):
                return True
        except OSError:
            continue
    return False


def wait_for_broker(bootstrap: str, timeout_s: float) -> None:
    """Return once the cluster at `bootstrap` answers with at least one live broker and a controller.

    Raises `KafkaTimeoutError` (a `KafkaError`) when it does not within `timeout_s` seconds; the caller
    decides whether to retry. An open port is not enough: a broker that is still starting accepts
    connections before it can serve metadata, so this asks for the cluster description. While the port
    is closed it only probes the port with a plain socket: kafka-python would log every refused
    connection at ERROR (and, in 3.0.12, leave the failed socket to the garbage collector).
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if not _port_open(bootstrap, min(remaining, _ATTEMPT_S)):
            last_error = KafkaConnectionError(f"nothing listens on {bootstrap}")
        else:
            admin = None
            try:
                admin = _admin(bootstrap, min(deadline - time.monotonic(), _ATTEMPT_S))
                cluster = admin.describe_cluster()
                if cluster.get("brokers") and cluster.get("controller_id", -1) >= 0:
                    return
                last_error = KafkaError(f"no live broker or controller yet: {cluster}")
            except KafkaError as error:
                last_error = error
            finally:
                if admin is not None:
                    admin.close()
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
    raise KafkaTimeoutError(f"Kafka at {bootstrap} did not answer within {timeout_s:g} s: {last_error}")


def with_backoff(bootstrap: str, attempt: Callable[[float], T], stopped: Callable[[], bool]) -> T | None:
    """`attempt(timeout_s)`'s result, retried while it raises: a broker that is down, still starting, or just
    restarted and fenced ("All brokers are currently fenced"), or one that goes away meanwhile. Each failure
    is logged ("Kafka unreachable, retrying") and waited out, 1 s doubling to 30 s. None once `stopped()`."""
    delay = 1.0
    while not stopped():
        try:
            return attempt(delay)
        except Exception as error:  # kafka-python raises several kinds; all mean "not yet"
            log.warning(
                "Kafka unreachable, retrying", extra={"bootstrap": bootstrap, "retry_in_s": delay, "error": str(error)}
            )
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
    return None


def _reap_half_built_clients() -> None:
    """Close now the sockets of an admin client whose constructor failed half-way (connected to a broker
    still starting, then no controller yet): kafka-python leaves them in a reference cycle, and the
    garbage collector would close them later, anywhere, with a ResourceWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    """Partition counts of the topics among `names` that exist."""
    counts: dict[str, int] = {}
    for topic in admin.describe_topics(names):
        if topic.get("error_code", 0) == 0 and topic.get("partitions"):
            counts[topic["name"]] = len(topic["partitions"])
    return counts


def ensure_topics(
    bootstrap: str,
    topics: dict[str, int],
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> None:
    """Create the topics of `topics` (name -> partition count) that do not exist yet.

    Idempotent: existing topics are left alone (one with fewer partitions than asked for is logged as a
    warning), and a topic created concurrently by someone else is not an error. Returns once every topic
    has a leader for each partition that answers as one, so a producer or consumer started right after finds
    them. The answer is asked for every topic, not only one this call created: another process may have created
    it a moment before this one looked (`make run`'s worker and publisher start together), and the metadata
    names a leader before that broker has taken the partition on; a producer sending then logs a
    `NotLeaderForPartitionError` and retries.
    """
    if not topics:
        return
    names = sorted(topics)
    admin = _admin(bootstrap, timeout_s)
    try:
        existing = _partition_counts(admin, names)
        for name, have in existing.items():
            want = topics[name]
            if have < want:
                log.warning(
                    "topic has fewer partitions than configured; leaving it as it is",
                    extra={"topic": name, "partitions": have, "configured": want},
                )
        missing = {
            name: {"num_partitions": topics[name], "replication_factor": replication_factor}
            for name in names
            if name not in existing
        }
        created = set(missing)
        if missing:
            result = admin.create_topics(missing, timeout_ms=int(timeout_s * 1000), raise_errors=False)
            for topic in result["topics"]:
                error = for_code(topic["error_code"])
                if error is TopicAlreadyExistsError:
                    created.discard(topic["name"])  # by someone else between our describe and our create
                    continue
                if error is not NoError:
                    raise error(f"creating topic {topic['name']}: {topic.get('error_message')}")
            if created:
                log.info("topics created", extra={"topics": {name: topics[name] for name in sorted(created)}})
        admin.wait_for_topics(names, timeout_ms=int(timeout_s * 1000))
        counts = {**existing, **(_partition_counts(admin, sorted(missing)) if missing else {})}
        leaders = {TopicPartition(name, p): OffsetSpec.LATEST for name, count in counts.items() for p in range(count)}
        admin.list_partition_offsets(leaders, timeout_ms=int(timeout_s * 1000))  # retries until each answers
    finally:
        admin.close()

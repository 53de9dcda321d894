"""Keys go to the partition kafka-python's default partitioner (and Java's) picks, memo or not."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import DefaultPartitioner

from uythac.adapters.kafka import producer
from uythac.adapters.kafka.producer import KeyPartitioner


class Cluster:
    """The part of kafka-python's ClusterMetadata a partitioner reads."""

    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"uythac.events"}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions if topic == "uythac.events" else None

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


def _place(partitioner: Any, key: bytes | None, cluster: Cluster) -> int:
    return int(partitioner.partition("uythac.events", None, key, None, None, cluster))


@given(keys=st.lists(st.binary(max_size=24), min_size=1, max_size=50), partitions=st.integers(1, 64))
def test_a_key_goes_where_the_default_partitioner_puts_it(keys: list[bytes], partitions: int) -> None:
    memo, default, cluster = KeyPartitioner(), DefaultPartitioner(), Cluster(partitions)
    for key in keys + keys:  # the second time from the memo
        assert _place(memo, key, cluster) == _place(default, key, cluster)


def test_a_topic_grown_since_places_its_keys_anew() -> None:
    memo, default = KeyPartitioner(), DefaultPartitioner()
    keys = [f"C{n:04d}".encode() for n in range(100)]
    assert [_place(memo, key, Cluster(3)) for key in keys] == [_place(default, key, Cluster(3)) for key in keys]
    assert [_place(memo, key, Cluster(12)) for key in keys] == [_place(default, key, Cluster(12)) for key in keys]


def test_the_memo_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(producer, "KNOWN_KEYS", 10)
    memo = KeyPartitioner()
    for n in range(25):
        _place(memo, f"C{n}".encode(), Cluster(12))
    assert len(memo._known) <= 10

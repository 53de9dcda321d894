"""The worker's batch histogram counts a batch exactly as one `observe` per value would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from uythac.metrics import BatchHistogram

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    [family] = histogram.collect()
    return {(s.name, s.labels.get("le", "")): s.value for s in family.samples if not s.name.endswith("_created")}


@given(st.lists(st.lists(st.sampled_from(BUCKETS) | st.floats(0, 100)), max_size=4))
def test_observe_all_counts_as_observe_one_by_one(batches: list[list[float]]) -> None:
    """Values exactly on a bucket's bound count in that bucket, as Prometheus's `le` says."""
    one_by_one = Histogram("one", "one", buckets=BUCKETS, registry=CollectorRegistry())
    at_once = BatchHistogram("many", "many", buckets=BUCKETS, registry=CollectorRegistry())
    for batch in batches:
        for value in batch:
            one_by_one.observe(value)
        at_once.observe_all(batch)
    expected = {(name.replace("one", "many", 1), le): value for (name, le), value in samples(one_by_one).items()}
    got = samples(at_once)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key

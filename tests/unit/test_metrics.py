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


NOW = 1_700_000_000.123  # seconds since the epoch
# Stamps (ms) whose ages fall on every bound exactly, around them, in the future, and none at all (0 or less).
STAMPS = st.sampled_from(
    [int(NOW * 1000 - bound * 1000) + d for bound in BUCKETS for d in (-1, 0, 1)] + [0, -5, int(NOW * 1000) + 7]
) | st.integers(int(NOW * 1000) - 200_000, int(NOW * 1000) + 1000)


@given(st.lists(st.lists(STAMPS), max_size=4), st.sampled_from([NOW, NOW + 0.0004, 1_700_000_000.0]))
def test_observe_ages_counts_as_observe_one_by_one(batches: list[list[int]], now: float) -> None:
    """Ages exactly on a bucket's bound count in that bucket, as Prometheus's `le` says; stamps of 0 or less
    are not observed; ages in the future count as 0."""
    one_by_one = Histogram("one", "one", buckets=BUCKETS, registry=CollectorRegistry())
    at_once = BatchHistogram("many", "many", buckets=BUCKETS, registry=CollectorRegistry())
    for batch in batches:
        for stamp in batch:
            if stamp > 0:
                one_by_one.observe(max(now - stamp / 1000, 0))
        at_once.observe_ages(batch, now)
    expected = {(name.replace("one", "many", 1), le): value for (name, le), value in samples(one_by_one).items()}
    got = samples(at_once)
    assert got.keys() == expected.keys()
    # The sum: each age one-by-one is rounded where a stamp near 1.7e12 ms meets `now` (2.4e-7 s apart).
    slack = 1e-6 * sum(len(batch) for batch in batches)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=slack if key[0] == "many_sum" else 0), key

"""The intake's alignment: records go to the worker once no partition can still bring an older one."""

from __future__ import annotations

from uythac.adapters.kafka.alignment import Alignment, Entry
from uythac.core.events import Rejection


def entries(days: list[int], first_offset: int = 0) -> list[Entry]:
    """Records of these business dates (0: a rejected record) at consecutive offsets."""
    return [
        Entry(
            day,
            first_offset + i,
            b"k",
            b"{}",
            (),
            0,
            f"e{first_offset + i}",
            b"d",
            Rejection("x") if day == 0 else None,
        )
        for i, day in enumerate(days)
    ]


def handed(released: list[tuple[int, list[Entry]]]) -> dict[int, list[int]]:
    return {partition: [entry.day for entry in out] for partition, out in released}


def test_a_partition_ahead_waits_for_the_others() -> None:
    alignment = Alignment(patience_s=5.0, hold_limit=1000)
    alignment.add(0, entries([10, 11, 12, 40, 41]))
    alignment.add(1, entries([12, 13, 14]))
    assert handed(alignment.release(behind={0, 1}, limit=100, now=0.0)) == {0: [10, 11, 12], 1: [12, 13, 14]}
    assert alignment.holding() == 2  # 40, 41 wait: partition 1 may still bring 15..39
    assert alignment.release(behind={0, 1}, limit=100, now=0.0) == []


def test_a_caught_up_partition_holds_nothing_back() -> None:
    alignment = Alignment(patience_s=5.0, hold_limit=1000)
    alignment.add(0, entries([40, 41]))
    assert alignment.release(behind={1}, limit=100, now=0.0) == []  # partition 1 has records in Kafka, none polled yet
    assert handed(alignment.release(behind=set(), limit=100, now=0.0)) == {0: [40, 41]}


def test_a_partition_behind_with_nothing_held_bounds_by_what_it_handed_over() -> None:
    alignment = Alignment(patience_s=5.0, hold_limit=1000)
    alignment.add(0, entries([5, 6]))
    alignment.add(1, entries([5]))
    assert handed(alignment.release(behind={0, 1}, limit=100, now=0.0)) == {0: [5], 1: [5]}
    assert handed(alignment.release(behind={0, 1}, limit=100, now=0.0)) == {}  # 1 is behind at 5: 6 waits
    alignment.add(1, entries([6, 7], first_offset=1))
    assert handed(alignment.release(behind={0, 1}, limit=100, now=0.0)) == {0: [6], 1: [6]}


def test_offset_order_is_kept_and_a_rejected_record_goes_with_what_precedes_it() -> None:
    alignment = Alignment(patience_s=5.0, hold_limit=1000)
    alignment.add(0, entries([0, 3, 0, 9, 2]))  # 2 comes after 9 in the partition: it waits behind it
    alignment.add(1, entries([4, 8]))
    assert handed(alignment.release(behind={0, 1}, limit=100, now=0.0)) == {
        0: [0, 3, 0],
        1: [4, 8],
    }  # 1 is behind at 8: 9 waits
    assert handed(alignment.release(behind={0}, limit=100, now=0.0)) == {0: [9, 2]}


def test_with_no_partition_behind_the_held_records_go_in_date_order_and_clear_drops_them() -> None:
    alignment = Alignment(patience_s=5.0, hold_limit=1000)
    alignment.add(0, entries([1, 2, 9]))
    alignment.add(1, entries([7]))
    assert alignment.release(behind={2}, limit=100, now=0.0) == []  # partition 2 not fetched yet: all wait
    assert handed(alignment.release(behind=set(), limit=3, now=0.0)) == {0: [1, 2], 1: [7]}  # 9 after 7, at the limit
    alignment.add(0, entries([8], first_offset=3))
    alignment.clear()
    assert alignment.holding() == 0 and alignment.release(behind=set(), limit=100, now=0.0) == []


def test_at_most_limit_records_go_at_a_time_and_the_rest_follow_in_order() -> None:
    alignment = Alignment(patience_s=5.0, hold_limit=1000)
    alignment.add(0, entries([1, 2, 3, 4]))
    alignment.add(1, entries([1, 2]))
    first = handed(alignment.release(behind=set(), limit=3, now=0.0))
    assert sum(map(len, first.values())) == 3 and max(max(days) for days in first.values()) <= 2
    rest = handed(alignment.release(behind=set(), limit=100, now=0.0))
    assert sorted(d for days in [*first.values(), *rest.values()] for d in days) == [1, 1, 2, 2, 3, 4]


def test_a_partition_behind_that_brings_nothing_for_the_patience_stops_holding_the_others_back() -> None:
    alignment = Alignment(patience_s=5.0, hold_limit=1000)
    alignment.add(0, entries([3, 4]))
    assert alignment.release(behind={1}, limit=100, now=100.0) == []  # partition 1 not fetched yet
    assert alignment.release(behind={1}, limit=100, now=104.9) == []
    assert handed(alignment.release(behind={1}, limit=100, now=105.0)) == {0: [3, 4]}


def test_records_brought_renew_the_patience() -> None:
    alignment = Alignment(patience_s=5.0, hold_limit=1000)
    alignment.add(0, entries([3, 9]))
    alignment.release(behind={0, 1}, limit=100, now=100.0)  # 1 starts waiting
    alignment.add(1, entries([2]))
    assert handed(alignment.release(behind={0, 1}, limit=100, now=104.0)) == {1: [2]}  # 1 is behind at 2
    assert alignment.release(behind={0, 1}, limit=100, now=108.0) == []  # waiting again since 104
    assert handed(alignment.release(behind={0, 1}, limit=100, now=109.0)) == {0: [3, 9]}


def test_past_the_hold_limit_only_the_partitions_holding_records_bound() -> None:
    alignment = Alignment(patience_s=5.0, hold_limit=4)
    alignment.add(0, entries([3, 9]))
    alignment.add(2, entries([5]))
    assert alignment.release(behind={1}, limit=100, now=0.0) == []  # three held, under the limit
    alignment.add(0, entries([10], first_offset=2))
    assert handed(alignment.release(behind={1}, limit=100, now=0.0)) == {0: [3, 9, 10], 2: [5]}  # still date order

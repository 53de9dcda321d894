"""The reference's reading of the other inspection duties (contract §7), checked by hand.

The property tests hold the service to `tests/reference.py`; these hold the reference to the contract.
Every expected date below was counted on a calendar, not computed: 2024 is a leap year, so
01/01/2024 + 90 days = 31/03/2024 (O), + 30 more = 30/04/2024 (E).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.reference import reference_report
from tests.support import ev, follow_up, group, inspect, loan, periodic, repay, tick

NONE = {"pending": 0, "missed": 0, "done": 0}


def duty(
    status: str,
    since: str,
    opened: str,
    deadline: str,
    late: str | None = None,
    loan_id: str = "L1",
    unit: tuple[str, str, str] = ("D01", "C0001", "HND"),
) -> dict[str, Any]:
    district, commune, org = unit
    return {
        "loan_id": loan_id,
        "district_id": district,
        "commune_id": commune,
        "org": org,
        "inactive_since": since,
        "opened_on": opened,
        "deadline": deadline,
        "status": status,
        "late_inspection_on": late,
    }


def unit_duties(report: dict[str, Any], commune: str = "C0001", org: str = "HND") -> dict[str, Any]:
    found: dict[str, Any] = next(u for u in report["units"] if (u["commune_id"], u["org"]) == (commune, org))["duties"]
    return found


def loan_counts(report: dict[str, Any], commune: str = "C0001", org: str = "HND") -> dict[str, int]:
    found: dict[str, int] = unit_duties(report, commune, org)["inactive_loan"]
    return found


def group_counts(report: dict[str, Any], commune: str = "C0001", org: str = "HND") -> dict[str, int]:
    found: dict[str, int] = unit_duties(report, commune, org)["group_of_year"]
    return found


# 7.1 Inactive loans: a loan disbursed on 01/01/2024 and never repaid


def test_day_89_without_activity_is_no_duty_yet() -> None:
    report = reference_report([loan("L1", "2024-01-01"), tick("2024-03-30")])
    assert report["duties"] == []
    assert loan_counts(report) == NONE
    assert report["units"][0]["components"]["inactive_loans"]["denominator"] == 0


def test_day_90_opens_the_duty_for_the_loans_counted_inactive_by_the_scorecard() -> None:
    report = reference_report([loan("L1", "2024-01-01"), tick("2024-03-31")])
    assert report["duties"] == [duty("pending", "2024-01-01", "2024-03-31", "2024-04-30")]
    assert loan_counts(report) == {"pending": 1, "missed": 0, "done": 0}
    inactive = report["units"][0]["components"]["inactive_loans"]
    assert (inactive["numerator"], inactive["denominator"]) == (1, 1)


def test_the_duty_is_pending_on_its_deadline_and_missed_the_day_after() -> None:
    on_deadline = reference_report([loan("L1", "2024-01-01"), tick("2024-04-30")])
    assert on_deadline["duties"] == [duty("pending", "2024-01-01", "2024-03-31", "2024-04-30")]
    day_after = reference_report([loan("L1", "2024-01-01"), tick("2024-05-01")])
    assert day_after["duties"] == [duty("missed", "2024-01-01", "2024-03-31", "2024-04-30")]
    assert loan_counts(day_after) == {"pending": 0, "missed": 1, "done": 0}


@pytest.mark.parametrize(
    "visit",
    [
        follow_up("L1", "2024-03-31"),  # on O
        follow_up("L1", "2024-04-30"),  # on E
        inspect("L1", "2024-04-15"),  # a post_disbursement inspection is a loan inspection too
        follow_up("L1", "2024-04-15", result="misuse"),  # either result
    ],
)
def test_a_loan_inspection_from_the_opening_day_to_the_deadline_does_the_duty(visit: dict[str, Any]) -> None:
    for at in ("2024-04-30", "2024-05-01", "2024-09-01"):
        report = reference_report([loan("L1", "2024-01-01"), visit, tick(at)])
        assert report["duties"] == []
        assert loan_counts(report) == {"pending": 0, "missed": 0, "done": 1}


def test_an_inspection_before_the_opening_day_does_not_count() -> None:
    events = [loan("L1", "2024-01-01"), inspect("L1", "2024-01-10"), follow_up("L1", "2024-03-30")]
    assert reference_report([*events, tick("2024-04-30")])["duties"] == [
        duty("pending", "2024-01-01", "2024-03-31", "2024-04-30")
    ]
    assert reference_report([*events, tick("2024-05-01")])["duties"] == [
        duty("missed", "2024-01-01", "2024-03-31", "2024-04-30")
    ]


def test_a_late_inspection_is_shown_and_the_duty_stays_missed() -> None:
    events = [loan("L1", "2024-01-01"), follow_up("L1", "2024-05-03"), inspect("L1", "2024-05-01")]
    report = reference_report([*events, tick("2024-06-01")])
    assert report["duties"] == [duty("missed", "2024-01-01", "2024-03-31", "2024-04-30", late="2024-05-01")]
    assert loan_counts(report) == {"pending": 0, "missed": 1, "done": 0}
    on_e_plus_1 = reference_report([loan("L1", "2024-01-01"), follow_up("L1", "2024-05-01")])
    assert on_e_plus_1["as_of"] == "2024-05-01"
    assert on_e_plus_1["duties"] == [duty("missed", "2024-01-01", "2024-03-31", "2024-04-30", late="2024-05-01")]


def test_a_repayment_dated_on_the_opening_day_ends_the_duty_and_starts_a_new_stretch() -> None:
    # 31/03/2024 + 90 = 29/06/2024 (O), + 30 = 29/07/2024 (E)
    events = [loan("L1", "2024-01-01"), repay("L1", "2024-03-31", principal=0), follow_up("L1", "2024-04-10")]
    for at in ("2024-03-31", "2024-05-01", "2024-06-28"):
        report = reference_report([*events, tick(at)])
        assert report["duties"] == []
        assert loan_counts(report) == NONE
    assert reference_report([*events, tick("2024-06-29")])["duties"] == [
        duty("pending", "2024-03-31", "2024-06-29", "2024-07-29")
    ]
    # the inspection of 10/04, inside the first stretch's window, does nothing for the second one
    assert reference_report([*events, tick("2024-07-30")])["duties"] == [
        duty("missed", "2024-03-31", "2024-06-29", "2024-07-29")
    ]


def test_a_loan_repaid_in_full_has_no_duty_and_one_partly_repaid_has() -> None:
    in_full = reference_report(
        [
            loan("L1", "2024-01-01", amount=10_000_000),
            repay("L1", "2024-01-15", 6_000_000),
            repay("L1", "2024-01-20", 4_000_000),
            tick("2024-06-01"),
        ]
    )
    assert in_full["duties"] == []
    assert loan_counts(in_full) == NONE
    # 15/01/2024 + 90 = 14/04/2024, + 30 = 14/05/2024
    partly = reference_report(
        [loan("L1", "2024-01-01", amount=10_000_000), repay("L1", "2024-01-15", 6_000_000), tick("2024-06-01")]
    )
    assert partly["duties"] == [duty("missed", "2024-01-15", "2024-04-14", "2024-05-14")]


def test_an_interest_only_repayment_is_activity() -> None:
    # 01/02/2024 + 90 = 01/05/2024, + 30 = 31/05/2024
    events = [loan("L1", "2024-01-01"), repay("L1", "2024-02-01", principal=0, interest=1000)]
    assert reference_report([*events, tick("2024-04-30")])["duties"] == []
    assert reference_report([*events, tick("2024-05-01")])["duties"] == [
        duty("pending", "2024-02-01", "2024-05-01", "2024-05-31")
    ]


def test_events_naming_another_unit_count_for_nothing_for_the_loan() -> None:
    events = [
        loan("L1", "2024-01-01", amount=10_000_000),
        repay("L1", "2024-03-01", 10_000_000, org="HPN"),  # neither activity nor principal for L1
        follow_up("L1", "2024-04-01", district_id="D02", commune_id="C0002"),
        follow_up("L1", "2024-05-02", org="HPN"),
    ]
    report = reference_report([*events, tick("2024-05-10")])
    assert report["duties"] == [duty("missed", "2024-01-01", "2024-03-31", "2024-04-30")]
    assert [u["org"] for u in report["units"]] == ["HND"]  # naming a unit does not report it


def test_a_periodic_inspection_naming_the_loan_is_not_a_loan_inspection() -> None:
    events = [
        group("G1", "2023-01-01"),
        loan("L1", "2024-01-01"),
        periodic("G1", "2024-04-01", loan_id="L1"),
        tick("2024-05-01"),
    ]
    report = reference_report(events)
    assert report["duties"] == [duty("missed", "2024-01-01", "2024-03-31", "2024-04-30")]
    assert group_counts(report) == {"pending": 0, "done": 1, "missed_last_year": 1}


def test_a_follow_up_is_neither_the_30_day_inspection_nor_a_periodic_one() -> None:
    report = reference_report(
        [group("G1", "2023-01-01"), loan("L1", "2024-01-01"), follow_up("L1", "2024-01-10"), tick("2024-02-01")]
    )
    assert [f["loan_id"] for f in report["flags"]] == ["L1"]
    components = report["units"][0]["components"]
    assert components["post_disbursement_inspection"]["numerator"] == 0
    assert components["periodic_inspection"]["numerator"] == 0
    assert group_counts(report) == {"pending": 1, "done": 0, "missed_last_year": 1}


def test_the_loan_is_read_from_its_earliest_disbursement_and_as_of_ignores_later_events() -> None:
    there = {"district_id": "D02", "commune_id": "C0002", "org": "DTN"}
    events = [
        loan("L1", "2024-01-01", **there),
        loan("L1", "2024-02-01", **there),  # disbursed again: not activity
        repay("L1", "2024-04-10", principal=0, interest=1000, **there),
        follow_up("L1", "2024-04-20", **there),
    ]
    report = reference_report(events, as_of=date(2024, 4, 5))
    assert report["duties"] == [duty("pending", "2024-01-01", "2024-03-31", "2024-04-30", unit=("D02", "C0002", "DTN"))]
    assert loan_counts(report, "C0002", "DTN") == {"pending": 1, "missed": 0, "done": 0}
    assert reference_report(events)["duties"] == []  # at 20/04 the repayment of 10/04 is 10 days old


def test_the_report_lists_pending_and_missed_duties_sorted_like_flags() -> None:
    hpn, other = {"org": "HPN"}, {"district_id": "D02", "commune_id": "C0002"}
    events = [
        loan("L9", "2024-01-01", **other),  # missed
        loan("L5", "2024-02-15"),  # 15/02 + 90 = 15/05, + 30 = 14/06: pending
        loan("L2", "2024-01-01"),  # missed, inspected late on 02/05
        follow_up("L2", "2024-05-02"),
        loan("L1", "2024-01-10", **hpn),  # 10/01 + 90 = 09/04, + 30 = 09/05: missed
        loan("L3", "2024-01-01"),  # done
        follow_up("L3", "2024-04-01"),
        loan("L4", "2024-04-01"),  # not inactive
        group("G7", "2024-04-01", district_id="D03", commune_id="C0003"),  # a unit with no duty
        tick("2024-05-20"),
    ]
    report = reference_report(events)
    assert list(report) == ["as_of", "units", "flags", "duties", "distribution"]
    assert report["duties"] == [
        duty("missed", "2024-01-01", "2024-03-31", "2024-04-30", loan_id="L2", late="2024-05-02"),
        duty("pending", "2024-02-15", "2024-05-15", "2024-06-14", loan_id="L5"),
        duty("missed", "2024-01-10", "2024-04-09", "2024-05-09", loan_id="L1", unit=("D01", "C0001", "HPN")),
        duty("missed", "2024-01-01", "2024-03-31", "2024-04-30", loan_id="L9", unit=("D02", "C0002", "HND")),
    ]
    assert [list(d) for d in report["duties"]] == [list(duty("missed", "", "", ""))] * 4
    assert [list(u)[-2:] for u in report["units"]] == [["components", "duties"]] * 4
    nothing = {"inactive_loan": NONE, "group_of_year": {"pending": 0, "done": 0, "missed_last_year": 0}}
    assert unit_duties(report, "C0003") == nothing
    assert loan_counts(report) == {"pending": 1, "missed": 1, "done": 1}
    assert loan_counts(report, org="HPN") == {"pending": 0, "missed": 1, "done": 0}
    assert loan_counts(report, "C0002") == {"pending": 0, "missed": 1, "done": 0}


def test_no_events_no_duties() -> None:
    assert reference_report([]) == {"as_of": None, "units": [], "flags": [], "duties": [], "distribution": {}}
    assert reference_report([], as_of=date(2024, 1, 1))["duties"] == []


# 7.2 Groups of the year

OPEN = {"pending": 1, "done": 0, "missed_last_year": 0}


def test_a_periodic_inspection_on_31_12_is_last_years_and_on_01_01_this_years() -> None:
    on_31_12 = [group("G1", "2023-01-01"), periodic("G1", "2023-12-31")]
    on_01_01 = [group("G1", "2023-01-01"), periodic("G1", "2024-01-01")]
    assert group_counts(reference_report([*on_31_12, tick("2024-01-10")])) == OPEN
    assert group_counts(reference_report([*on_01_01, tick("2024-01-10")])) == {
        "pending": 0,
        "done": 1,
        "missed_last_year": 1,
    }
    # read on that day itself: T = 01/01/2024
    assert group_counts(reference_report(on_01_01)) == {"pending": 0, "done": 1, "missed_last_year": 1}
    # T = 31/12/2023: the year is 2023; in 2022 the group did not exist
    assert group_counts(reference_report(on_31_12)) == {"pending": 0, "done": 1, "missed_last_year": 0}


@pytest.mark.parametrize(
    ("registered", "pending"),
    [("2024-04-02", 0), ("2024-04-01", 1), ("2024-03-31", 1)],  # 89, 90 and 91 days before 30/06/2024
)
def test_a_group_has_the_duty_of_the_year_from_its_90th_day(registered: str, pending: int) -> None:
    report = reference_report([group("G1", registered), tick("2024-06-30")])
    assert group_counts(report) == {"pending": pending, "done": 0, "missed_last_year": 0}


def closed(on: str, **fields: Any) -> dict[str, Any]:
    return ev("group.closed", on, group_id="G1", **fields)


MISSED = {"pending": 1, "done": 0, "missed_last_year": 1}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # registered 90 days before 31/12/2023 (02/10/2023), or one day later
        ([group("G1", "2023-10-02")], MISSED),
        ([group("G1", "2023-10-03")], OPEN),
        # inspected on the first or the last day of 2023, or only in 2022, or only in 2024
        ([group("G1", "2022-01-01"), periodic("G1", "2023-01-01")], OPEN),
        ([group("G1", "2022-01-01"), periodic("G1", "2023-12-31")], OPEN),
        ([group("G1", "2022-01-01"), periodic("G1", "2022-12-31")], MISSED),
        ([group("G1", "2022-01-01"), periodic("G1", "2024-01-01")], {"pending": 0, "done": 1, "missed_last_year": 1}),
        # closed on 31/12/2023: not active on that day; closed on 01/01/2024: it was, and it missed 2023
        ([group("G1", "2022-01-01"), closed("2023-12-31")], {"pending": 0, "done": 0, "missed_last_year": 0}),
        ([group("G1", "2022-01-01"), closed("2024-01-01")], {"pending": 0, "done": 0, "missed_last_year": 1}),
        # a closing or an inspection that names another unit counts for nothing
        ([group("G1", "2022-01-01"), closed("2023-06-01", org="HPN")], MISSED),
        (
            [
                group("G1", "2022-01-01"),
                periodic("G1", "2023-06-01", org="HPN"),
                periodic("G1", "2024-02-01", org="HPN"),
            ],
            MISSED,
        ),
    ],
)
def test_the_group_duties_read_on_01_03_2024(events: list[dict[str, Any]], expected: dict[str, int]) -> None:
    assert group_counts(reference_report([*events, tick("2024-03-01")])) == expected

"""The rules of the contract (docs/contract.md) at their edges: each rule one day inside and one day outside.

Every test replays a few events through the real replay path (`report_of`) and asserts the exact
numerators, denominators and flags of the report. The unit is D01/C0001/HND unless a test says
otherwise; a loan disbursed on `d` has its deadline `D = d + 30`.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    component,
    deposit,
    ev,
    group,
    inspect,
    loan,
    new_store,
    overdue,
    periodic,
    repay,
    replay_into,
    report_at,
    report_of,
    tick,
    unit_of,
)

pytestmark = pytest.mark.usefixtures("store_kind")  # each test on SQLite, then PostgreSQL

d = date(2023, 3, 1)  # disbursement day of the loans below
D = d + timedelta(days=30)  # their deadline: 2023-03-31
T = date(2023, 6, 30)  # the clock of the window tests


def days(n: int, base: date = d) -> date:
    return base + timedelta(days=n)


def pdi(report: dict[str, Any]) -> tuple[int, int]:
    part = component(report, "post_disbursement_inspection")
    return part["numerator"], part["denominator"]


def ratio(report: dict[str, Any], key: str) -> tuple[int, int]:
    part = component(report, key)
    return part["numerator"], part["denominator"]


def flag(loan_id: str = "L1", late: date | None = None, disbursed: date = d) -> dict[str, Any]:
    return {
        "loan_id": loan_id,
        "district_id": "D01",
        "commune_id": "C0001",
        "org": "HND",
        "disbursed_on": disbursed.isoformat(),
        "deadline": (disbursed + timedelta(days=30)).isoformat(),
        "late_inspection_on": None if late is None else late.isoformat(),
    }


# --- the 30-day post-disbursement inspection -------------------------------------------------


def test_inspection_on_day_30_the_deadline_counts(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), inspect("L1", days(30)), tick(days(40))])
    assert pdi(report) == (1, 1)
    assert report["flags"] == []


def test_inspection_on_day_31_is_late_and_the_loan_is_flagged(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), inspect("L1", days(31)), tick(days(40))])
    assert pdi(report) == (0, 1)
    assert report["flags"] == [flag(late=days(31))]


def test_inspection_on_the_disbursement_day_counts(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), inspect("L1", d), tick(days(40))])
    assert pdi(report) == (1, 1)
    assert report["flags"] == []


def test_inspection_dated_the_day_before_disbursement_counts_for_nothing(tmp_path: Path) -> None:
    events = [loan("L1", d), inspect("L1", days(-1))]
    at_deadline = report_of(tmp_path, [*events, tick(D)])
    assert at_deadline["flags"] == []
    assert pdi(at_deadline) == (0, 0)
    after = report_of(tmp_path, [*events, tick(D + timedelta(days=1))])
    assert pdi(after) == (0, 1)
    assert after["flags"] == [flag(late=None)]


def test_loan_is_pending_at_its_deadline_and_not_in_the_denominator(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), tick(D)])
    assert report["as_of"] == D.isoformat()
    assert pdi(report) == (0, 0)
    assert report["flags"] == []


def test_loan_is_missed_the_day_after_its_deadline(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), tick(D + timedelta(days=1))])
    assert pdi(report) == (0, 1)
    assert report["flags"] == [flag()]


def test_pending_and_missed_through_as_of(tmp_path: Path) -> None:
    events = [loan("L1", d), tick(days(60))]
    assert report_of(tmp_path, events, as_of=D)["flags"] == []
    assert report_of(tmp_path, events, as_of=D + timedelta(days=1))["flags"] == [flag()]


def test_on_time_inspection_arriving_after_the_flag_clears_it(tmp_path: Path) -> None:
    db = new_store(tmp_path)
    replay_into(db, [loan("L1", d), tick(days(45))])
    assert report_at(db)["flags"] == [flag()]
    replay_into(db, [inspect("L1", days(29))])  # entered late into the software, dated within 30 days
    report = report_at(db)
    assert report["flags"] == []
    assert pdi(report) == (1, 1)


def test_on_time_inspection_after_the_flag_in_one_file_clears_it(tmp_path: Path) -> None:
    events = [loan("L1", d), tick(days(45)), inspect("L1", days(10))]
    report = report_of(tmp_path, events, batch_size=1)
    assert report["flags"] == []
    assert pdi(report) == (1, 1)


def test_late_inspection_never_clears_a_flag(tmp_path: Path) -> None:
    db = new_store(tmp_path)
    replay_into(db, [loan("L1", d), tick(days(45))])
    replay_into(db, [inspect("L1", days(31))])
    report = report_at(db)
    assert report["flags"] == [flag(late=days(31))]
    assert pdi(report) == (0, 1)


def test_late_inspection_on_is_the_earliest_late_one_whatever_the_file_order(tmp_path: Path) -> None:
    events = [loan("L1", d), inspect("L1", days(40)), inspect("L1", days(33)), inspect("L1", days(35)), tick(days(45))]
    report = report_of(tmp_path, events, batch_size=1)
    assert report["flags"] == [flag(late=days(33))]


def test_inspection_arriving_before_its_loans_disbursement_still_counts(tmp_path: Path) -> None:
    events = [inspect("L1", days(5)), tick(days(3)), loan("L1", d), tick(days(45))]
    report = report_of(tmp_path, events, batch_size=1)
    assert pdi(report) == (1, 1)
    assert report["flags"] == []


def test_misuse_inspection_counts_as_an_inspection(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), inspect("L1", days(12), result="misuse"), tick(days(45))])
    assert pdi(report) == (1, 1)
    assert report["flags"] == []
    assert component(report, "post_disbursement_inspection")["points"] == 10


def test_compliant_result_counts_as_an_inspection(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), inspect("L1", days(12), result="compliant"), tick(days(45))])
    assert pdi(report) == (1, 1)


def test_number_of_flags_is_denominator_minus_numerator(tmp_path: Path) -> None:
    events = [
        loan("L1", d),
        loan("L2", d),
        loan("L3", d),
        inspect("L2", days(30)),
        inspect("L3", days(31)),
        tick(days(50)),
    ]
    report = report_of(tmp_path, events)
    assert pdi(report) == (1, 3)
    assert report["flags"] == [flag("L1"), flag("L3", late=days(31))]
    assert component(report, "post_disbursement_inspection")["points"] == 3.33


# --- the scoring window of post_disbursement_inspection ---------------------------------------


def test_deadline_exactly_w_days_before_t_is_out_of_the_window(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), tick(D + timedelta(days=365))])
    assert pdi(report) == (0, 0)
    assert report["flags"] == []


def test_deadline_w_minus_1_days_before_t_is_in_the_window(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), tick(D + timedelta(days=364))])
    assert pdi(report) == (0, 1)
    assert report["flags"] == [flag()]


def test_deadline_equal_to_t_is_out_of_the_window(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), inspect("L1", days(2)), tick(D)])
    assert pdi(report) == (0, 0)
    assert component(report, "post_disbursement_inspection")["points"] == 10


# --- periodic_inspection --------------------------------------------------------------------


def test_group_registered_exactly_90_days_before_t_is_in_the_periodic_denominator(tmp_path: Path) -> None:
    report = report_of(tmp_path, [group("G1", T - timedelta(days=90)), tick(T)])
    assert ratio(report, "periodic_inspection") == (0, 1)
    assert component(report, "periodic_inspection")["points"] == 0


def test_group_registered_89_days_before_t_is_not_in_the_periodic_denominator(tmp_path: Path) -> None:
    report = report_of(tmp_path, [group("G1", T - timedelta(days=89)), tick(T)])
    assert ratio(report, "periodic_inspection") == (0, 0)
    assert component(report, "periodic_inspection")["points"] == 10


def test_periodic_inspection_dated_exactly_w_days_before_t_does_not_count(tmp_path: Path) -> None:
    events = [group("G1", date(2022, 1, 1)), periodic("G1", T - timedelta(days=365)), tick(T)]
    assert ratio(report_of(tmp_path, events), "periodic_inspection") == (0, 1)


def test_periodic_inspection_dated_w_minus_1_days_before_t_counts(tmp_path: Path) -> None:
    events = [group("G1", date(2022, 1, 1)), periodic("G1", T - timedelta(days=364)), tick(T)]
    report = report_of(tmp_path, events)
    assert ratio(report, "periodic_inspection") == (1, 1)
    assert component(report, "periodic_inspection")["points"] == 10


def test_periodic_inspection_dated_t_counts(tmp_path: Path) -> None:
    events = [group("G1", date(2022, 1, 1)), periodic("G1", T)]
    assert ratio(report_of(tmp_path, events), "periodic_inspection") == (1, 1)


def test_group_closed_on_t_is_out_of_group_components(tmp_path: Path) -> None:
    events = [group("G1", date(2022, 1, 1)), ev("group.closed", T, group_id="G1")]
    report = report_of(tmp_path, events)
    assert ratio(report, "periodic_inspection") == (0, 0)
    assert ratio(report, "savings_activity") == (0, 0)


def test_group_closed_before_t_is_out_of_group_components(tmp_path: Path) -> None:
    events = [group("G1", date(2022, 1, 1)), ev("group.closed", date(2023, 1, 1), group_id="G1"), tick(T)]
    report = report_of(tmp_path, events)
    assert ratio(report, "periodic_inspection") == (0, 0)
    assert ratio(report, "savings_activity") == (0, 0)


def test_group_closed_after_as_of_is_still_active(tmp_path: Path) -> None:
    events = [group("G1", date(2022, 1, 1)), ev("group.closed", T + timedelta(days=1), group_id="G1")]
    report = report_of(tmp_path, events, as_of=T)
    assert ratio(report, "periodic_inspection") == (0, 1)
    assert ratio(report, "savings_activity") == (0, 1)


# --- savings_activity -----------------------------------------------------------------------


def test_group_registered_exactly_30_days_before_t_is_in_the_savings_denominator(tmp_path: Path) -> None:
    report = report_of(tmp_path, [group("G1", T - timedelta(days=30)), tick(T)])
    assert ratio(report, "savings_activity") == (0, 1)
    assert component(report, "savings_activity")["points"] == 0


def test_group_registered_29_days_before_t_is_not_in_the_savings_denominator(tmp_path: Path) -> None:
    report = report_of(tmp_path, [group("G1", T - timedelta(days=29)), tick(T)])
    assert ratio(report, "savings_activity") == (0, 0)
    assert component(report, "savings_activity")["points"] == 25


def test_deposit_dated_exactly_30_days_before_t_does_not_count(tmp_path: Path) -> None:
    events = [group("G1", date(2023, 1, 1)), deposit("G1", T - timedelta(days=30)), tick(T)]
    assert ratio(report_of(tmp_path, events), "savings_activity") == (0, 1)


def test_deposit_dated_29_days_before_t_counts(tmp_path: Path) -> None:
    events = [group("G1", date(2023, 1, 1)), deposit("G1", T - timedelta(days=29)), tick(T)]
    report = report_of(tmp_path, events)
    assert ratio(report, "savings_activity") == (1, 1)
    assert component(report, "savings_activity")["points"] == 25


# --- inactive_loans -------------------------------------------------------------------------


def test_loan_disbursed_exactly_90_days_before_t_is_in_the_inactive_denominator(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", T - timedelta(days=90)), tick(T)])
    assert ratio(report, "inactive_loans") == (1, 1)
    assert component(report, "inactive_loans")["points"] == 0


def test_loan_disbursed_89_days_before_t_is_not_in_the_inactive_denominator(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", T - timedelta(days=89)), tick(T)])
    assert ratio(report, "inactive_loans") == (0, 0)
    assert component(report, "inactive_loans")["points"] == 20


def test_repayment_dated_exactly_90_days_before_t_does_not_make_a_loan_active(tmp_path: Path) -> None:
    events = [loan("L1", date(2023, 1, 1)), repay("L1", T - timedelta(days=90), principal=1000), tick(T)]
    assert ratio(report_of(tmp_path, events), "inactive_loans") == (1, 1)


def test_repayment_dated_89_days_before_t_makes_a_loan_active(tmp_path: Path) -> None:
    events = [loan("L1", date(2023, 1, 1)), repay("L1", T - timedelta(days=89), principal=1000), tick(T)]
    report = report_of(tmp_path, events)
    assert ratio(report, "inactive_loans") == (0, 1)
    assert component(report, "inactive_loans")["points"] == 20


def test_interest_only_repayment_counts_as_activity(tmp_path: Path) -> None:
    events = [loan("L1", date(2023, 1, 1)), repay("L1", T - timedelta(days=10), principal=0, interest=5000), tick(T)]
    report = report_of(tmp_path, events)
    assert ratio(report, "inactive_loans") == (0, 1)
    assert ratio(report, "overdue_ratio") == (0, 10_000_000)


def test_fully_repaid_loan_is_out_of_inactive_loans_and_outstanding(tmp_path: Path) -> None:
    events = [loan("L1", date(2022, 6, 1), amount=5_000_000), repay("L1", date(2022, 12, 1), principal=5_000_000)]
    report = report_of(tmp_path, [*events, tick(T)])
    assert ratio(report, "inactive_loans") == (0, 0)
    assert ratio(report, "overdue_ratio") == (0, 0)


def test_overpaid_loan_has_outstanding_zero_not_negative(tmp_path: Path) -> None:
    events = [
        loan("L1", date(2022, 6, 1), amount=5_000_000),
        repay("L1", date(2022, 12, 1), principal=7_000_000),
        loan("L2", date(2023, 6, 1), amount=3_000_000),
        tick(T),
    ]
    report = report_of(tmp_path, events)
    assert ratio(report, "overdue_ratio") == (0, 3_000_000)
    assert ratio(report, "inactive_loans") == (0, 0)


def test_inactive_band_at_one_loan_in_twenty(tmp_path: Path) -> None:
    # 1/20 = 5 % exactly → 10 points; 1/19 > 5 % → 5 points
    old = date(2023, 1, 1)
    active = [e for i in range(19) for e in (loan(f"A{i}", old), repay(f"A{i}", T, principal=1))]
    report = report_of(tmp_path, [*active, loan("Q", old)])
    assert ratio(report, "inactive_loans") == (1, 20)
    assert component(report, "inactive_loans")["points"] == 10
    fewer = [e for i in range(18) for e in (loan(f"A{i}", old), repay(f"A{i}", T, principal=1))]
    report = report_of(tmp_path, [*fewer, loan("Q", old)])
    assert ratio(report, "inactive_loans") == (1, 19)
    assert component(report, "inactive_loans")["points"] == 5


# --- overdue --------------------------------------------------------------------------------


def test_latest_overdue_by_date_wins_whatever_the_file_order(tmp_path: Path) -> None:
    events = [
        loan("L1", date(2023, 1, 1)),
        overdue("L1", date(2023, 5, 2), 100_000, event_id="o-a"),  # later date, smaller event_id
        overdue("L1", date(2023, 5, 1), 900_000, event_id="o-z"),
        tick(T),
    ]
    report = report_of(tmp_path, events, batch_size=1)
    assert ratio(report, "overdue_ratio") == (100_000, 10_000_000)


def test_latest_overdue_on_the_same_date_is_the_greatest_event_id(tmp_path: Path) -> None:
    same_day = date(2023, 5, 1)
    first = [overdue("L1", same_day, 300_000, event_id="o-b"), overdue("L1", same_day, 700_000, event_id="o-a")]
    for events in (first, list(reversed(first))):
        report = report_of(tmp_path, [loan("L1", date(2023, 1, 1)), *events, tick(T)], batch_size=1)
        assert ratio(report, "overdue_ratio") == (300_000, 10_000_000)


def test_overdue_of_zero_clears_an_earlier_overdue(tmp_path: Path) -> None:
    events = [
        loan("L1", date(2023, 1, 1)),
        overdue("L1", date(2023, 6, 1), 0),
        overdue("L1", date(2023, 5, 1), 2_000_000),
        tick(T),
    ]
    assert ratio(report_of(tmp_path, events), "overdue_ratio") == (0, 10_000_000)


def test_overdue_is_capped_at_outstanding(tmp_path: Path) -> None:
    events = [
        loan("L1", date(2023, 1, 1), amount=10_000_000),
        overdue("L1", date(2023, 5, 1), 5_000_000),
        repay("L1", date(2023, 6, 1), principal=9_000_000),
        tick(T),
    ]
    report = report_of(tmp_path, events)
    assert ratio(report, "overdue_ratio") == (1_000_000, 1_000_000)
    assert component(report, "overdue_ratio")["points"] == 0


def test_overdue_is_zero_when_no_overdue_event(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", date(2023, 1, 1)), loan("L2", date(2023, 2, 1), amount=5), tick(T)])
    assert ratio(report, "overdue_ratio") == (0, 10_000_005)
    assert component(report, "overdue_ratio")["points"] == 35


def test_overdue_dated_after_as_of_is_ignored(tmp_path: Path) -> None:
    events = [loan("L1", date(2023, 1, 1)), overdue("L1", T, 400_000), overdue("L1", T + timedelta(days=1), 900_000)]
    assert ratio(report_of(tmp_path, events, as_of=T), "overdue_ratio") == (400_000, 10_000_000)


def test_overdue_band_edge_at_half_a_percent(tmp_path: Path) -> None:
    events = [loan("L1", date(2023, 1, 1), amount=200_000_000), overdue("L1", date(2023, 5, 1), 1_000_000), tick(T)]
    report = report_of(tmp_path, events)
    assert ratio(report, "overdue_ratio") == (1_000_000, 200_000_000)
    assert component(report, "overdue_ratio")["points"] == 35
    events[1] = overdue("L1", date(2023, 5, 1), 1_000_001)
    assert component(report_of(tmp_path, events), "overdue_ratio")["points"] == 28


# --- denominators of 0, reported units --------------------------------------------------------


def test_zero_denominators_give_full_points(tmp_path: Path) -> None:
    report = report_of(tmp_path, [group("G1", T)])
    unit = unit_of(report)
    assert {key: (c["points"], c["numerator"], c["denominator"]) for key, c in unit["components"].items()} == {
        "post_disbursement_inspection": (10, 0, 0),
        "periodic_inspection": (10, 0, 0),
        "overdue_ratio": (35, 0, 0),
        "inactive_loans": (20, 0, 0),
        "savings_activity": (25, 0, 0),
    }
    assert unit["score"] == 100
    assert unit["class"] == "tot"


def test_unit_is_reported_with_a_group_registration(tmp_path: Path) -> None:
    report = report_of(tmp_path, [group("G1", T, commune_id="C0002", org="HPN", district_id="D02")])
    assert [(u["district_id"], u["commune_id"], u["org"]) for u in report["units"]] == [("D02", "C0002", "HPN")]
    assert report["distribution"] == {"HPN": {"tot": 1, "kha": 0, "trung_binh": 0, "yeu": 0}}


def test_unit_is_reported_with_a_disbursement(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", T, commune_id="C0003", org="DTN")])
    assert [(u["commune_id"], u["org"]) for u in report["units"]] == [("C0003", "DTN")]


def test_unit_is_not_reported_by_other_events(tmp_path: Path) -> None:
    unit = {"commune_id": "C0009", "org": "HCCB"}
    events = [
        repay("L9", T, principal=100, **unit),
        overdue("L9", T, 100, **unit),
        inspect("L9", T, **unit),
        periodic("G9", T, **unit),
        deposit("G9", T, **unit),
        ev("group.closed", T, group_id="G9", **unit),
        tick(T),
    ]
    report = report_of(tmp_path, events)
    assert report["as_of"] == T.isoformat()
    assert report["units"] == []
    assert report["flags"] == []
    assert report["distribution"] == {}


def test_repayment_before_its_loan_is_known_counts_once_disbursed(tmp_path: Path) -> None:
    db = new_store(tmp_path)
    replay_into(db, [repay("L1", T - timedelta(days=5), principal=4_000_000), tick(T)])
    assert report_at(db)["units"] == []
    replay_into(db, [loan("L1", date(2023, 1, 1), amount=10_000_000)])
    report = report_at(db)
    assert ratio(report, "overdue_ratio") == (0, 6_000_000)
    assert ratio(report, "inactive_loans") == (0, 1)


def test_repayment_before_disbursement_in_one_file(tmp_path: Path) -> None:
    events = [repay("L1", T - timedelta(days=5), principal=4_000_000), loan("L1", date(2023, 1, 1)), tick(T)]
    report = report_of(tmp_path, events, batch_size=1)
    assert ratio(report, "overdue_ratio") == (0, 6_000_000)
    assert ratio(report, "inactive_loans") == (0, 1)


def test_deposit_before_its_group_is_registered_counts_once_registered(tmp_path: Path) -> None:
    db = new_store(tmp_path)
    replay_into(db, [deposit("G1", T - timedelta(days=3)), periodic("G1", T - timedelta(days=3)), tick(T)])
    replay_into(db, [group("G1", date(2023, 1, 1))])
    report = report_at(db)
    assert ratio(report, "savings_activity") == (1, 1)
    assert ratio(report, "periodic_inspection") == (1, 1)


# --- an event counts for a loan or group only when it names that loan's or group's unit --------------

OTHER = {"commune_id": "C0002"}  # the same organization in another commune: another unit


def test_an_on_time_inspection_naming_another_unit_leaves_the_loan_flagged(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), inspect("L1", days(10), **OTHER), tick(T)])
    assert pdi(report) == (0, 1) and report["flags"] == [flag()]


def test_the_same_inspection_naming_the_loans_unit_fulfils_it(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), inspect("L1", days(10)), tick(T)])
    assert pdi(report) == (1, 1) and report["flags"] == []


def test_a_repayment_naming_another_unit_repays_nothing(tmp_path: Path) -> None:
    events = [loan("L1", date(2023, 1, 1), amount=10_000_000), repay("L1", T, principal=4_000_000, **OTHER), tick(T)]
    report = report_of(tmp_path, events)
    assert ratio(report, "overdue_ratio") == (0, 10_000_000)  # still owing the whole amount
    assert ratio(report, "inactive_loans") == (1, 1)  # and inactive: that repayment was not its


def test_an_overdue_change_naming_another_unit_is_not_the_loans(tmp_path: Path) -> None:
    events = [loan("L1", date(2023, 1, 1), amount=10_000_000), overdue("L1", T, 5_000_000, **OTHER), tick(T)]
    assert ratio(report_of(tmp_path, events), "overdue_ratio") == (0, 10_000_000)


def test_a_deposit_periodic_inspection_and_closure_naming_another_unit_leave_the_group_alone(tmp_path: Path) -> None:
    events = [group("G1", date(2023, 1, 1)), deposit("G1", T, **OTHER), periodic("G1", T, **OTHER)]
    events += [ev("group.closed", T - timedelta(days=1), group_id="G1", **OTHER), tick(T)]
    report = report_of(tmp_path, events)
    assert ratio(report, "savings_activity") == (0, 1)  # active, and saving nothing of its own
    assert ratio(report, "periodic_inspection") == (0, 1)


def test_events_of_another_unit_count_once_an_earlier_disbursement_names_that_unit(tmp_path: Path) -> None:
    """The loan's unit is its earliest disbursement's: a later-arriving, earlier-dated one moves it, and with it
    which events count."""
    db = new_store(tmp_path)
    second = loan("L1", days(5), event_id="disbursed-second")  # C0001
    repaid, visited = repay("L1", T, principal=1_000_000, **OTHER), inspect("L1", days(10), **OTHER)
    replay_into(db, [second, repaid, visited, tick(T)])
    assert pdi(report_at(db)) == (0, 1)
    replay_into(db, [loan("L1", d, event_id="disbursed-first", **OTHER)])  # earlier, in C0002
    report = report_at(db)
    c0002 = component(report, "post_disbursement_inspection", commune_id="C0002")
    assert (c0002["numerator"], c0002["denominator"]) == (1, 1)  # its inspection of C0002 counts now
    assert component(report, "overdue_ratio", commune_id="C0002")["denominator"] == 9_000_000
    assert component(report, "post_disbursement_inspection")["denominator"] == 0  # C0001 has no loan left


# --- --as-of --------------------------------------------------------------------------------


def test_as_of_sets_t_to_that_day_even_with_no_event_on_it(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), tick(days(100))], as_of=days(31))
    assert report["as_of"] == days(31).isoformat()
    assert report["flags"] == [flag()]


def test_as_of_ignores_later_events(tmp_path: Path) -> None:
    events = [
        loan("L1", d),
        inspect("L1", days(32)),  # a late inspection after --as-of: not seen
        loan("L2", days(40), commune_id="C0002"),  # the only event of C0002: unit not reported
        repay("L1", days(33), principal=1_000_000),
        tick(days(100)),
    ]
    report = report_of(tmp_path, events, as_of=days(31))
    assert report["as_of"] == days(31).isoformat()
    assert report["flags"] == [flag(late=None)]
    assert [u["commune_id"] for u in report["units"]] == ["C0001"]
    assert ratio(report, "overdue_ratio") == (0, 10_000_000)


def test_as_of_before_a_deadline_leaves_the_loan_pending(tmp_path: Path) -> None:
    report = report_of(tmp_path, [loan("L1", d), tick(days(100))], as_of=D)
    assert report["as_of"] == D.isoformat()
    assert pdi(report) == (0, 0)
    assert report["flags"] == []


# --- business dates in Vietnam time (UTC+07:00) -----------------------------------------------


def _inspected_at(tmp_path: Path, occurred_at: str, disbursed_at: str = "2023-03-01") -> dict[str, Any]:
    return report_of(tmp_path, [loan("L1", disbursed_at), inspect("L1", occurred_at), tick(date(2023, 4, 10))])


def test_utc_16_59_59_is_the_same_business_day_so_on_time(tmp_path: Path) -> None:
    report = _inspected_at(tmp_path, "2023-03-31T16:59:59Z")
    assert pdi(report) == (1, 1)
    assert report["flags"] == []


def test_utc_17_00_00_is_the_next_business_day_so_late(tmp_path: Path) -> None:
    report = _inspected_at(tmp_path, "2023-03-31T17:00:00Z")
    assert pdi(report) == (0, 1)
    assert report["flags"] == [flag(late=date(2023, 4, 1))]


def test_disbursement_at_utc_16_59_59_is_that_business_day(tmp_path: Path) -> None:
    report = _inspected_at(tmp_path, "2023-03-31", disbursed_at="2023-03-01T16:59:59Z")
    assert pdi(report) == (1, 1)
    late = _inspected_at(tmp_path, "2023-04-01", disbursed_at="2023-03-01T16:59:59Z")
    assert late["flags"] == [flag(late=date(2023, 4, 1))]


def test_disbursement_at_utc_17_00_00_is_the_next_business_day(tmp_path: Path) -> None:
    report = _inspected_at(tmp_path, "2023-03-31", disbursed_at="2023-03-01T17:00:00Z")
    # disbursed 2023-03-02, deadline 2023-04-01: the check on 03-31 is on time, and so is one on 04-01
    assert pdi(report) == (1, 1)
    late = _inspected_at(tmp_path, "2023-04-02", disbursed_at="2023-03-01T17:00:00Z")
    assert late["flags"] == [flag(late=date(2023, 4, 2), disbursed=date(2023, 3, 2))]


def test_date_time_without_offset_is_taken_as_vietnam_time(tmp_path: Path) -> None:
    # as UTC this would be 2023-04-01 06:30 in Vietnam: late
    assert pdi(_inspected_at(tmp_path, "2023-03-31T23:30:00")) == (1, 1)
    late = _inspected_at(tmp_path, "2023-04-01T00:00:00")
    assert late["flags"] == [flag(late=date(2023, 4, 1))]


def test_negative_offset_is_converted_to_vietnam_time(tmp_path: Path) -> None:
    # 11:59:59-05:00 = 16:59:59Z = 23:59:59+07:00 on 03-31; 12:00:00-05:00 = 00:00+07:00 on 04-01
    assert pdi(_inspected_at(tmp_path, "2023-03-31T11:59:59-05:00")) == (1, 1)
    late = _inspected_at(tmp_path, "2023-03-31T12:00:00-05:00")
    assert late["flags"] == [flag(late=date(2023, 4, 1))]


def test_positive_offset_other_than_seven_is_converted(tmp_path: Path) -> None:
    # 2023-04-01T00:30:00+09:00 = 2023-03-31T22:30:00+07:00: on time
    assert pdi(_inspected_at(tmp_path, "2023-04-01T00:30:00+09:00")) == (1, 1)


def test_tick_in_utc_moves_the_clock_by_its_vietnam_date(tmp_path: Path) -> None:
    on_deadline = report_of(tmp_path, [loan("L1", d), ev("clock.tick", "2023-03-31T16:59:59Z")])
    assert on_deadline["as_of"] == "2023-03-31"
    assert on_deadline["flags"] == []
    after = report_of(tmp_path, [loan("L1", d), ev("clock.tick", "2023-03-31T17:00:00Z")])
    assert after["as_of"] == "2023-04-01"
    assert after["flags"] == [flag()]


def test_score_sums_rounded_components_through_a_replay(tmp_path: Path) -> None:
    registered, disbursed, t = date(2023, 1, 1), date(2023, 5, 1), date(2023, 6, 30)
    events: list[dict[str, Any]] = [group(g, registered) for g in ("G1", "G2", "G3")]
    events += [loan(loan_id, disbursed) for loan_id in ("L1", "L2", "L3")]
    events += [
        {**ev("inspection.recorded", date(2023, 5, 10), loan_id="L1"), "kind": "post_disbursement"},
        {**ev("inspection.recorded", date(2023, 5, 1), group_id="G1"), "kind": "periodic"},
        deposit("G1", date(2023, 6, 20)),
        ev("clock.tick", t),
    ]
    unit = unit_of(report_of(tmp_path, events))
    assert {k: c["points"] for k, c in unit["components"].items()} == {
        "post_disbursement_inspection": 3.33,
        "periodic_inspection": 3.33,
        "overdue_ratio": 35,
        "inactive_loans": 20,
        "savings_activity": 8.33,
    }
    assert unit["score"] == 69.99
    assert unit["class"] == "trung_binh"

"""The points a unit lost, in words, in English and Vietnamese, with each language's number marks."""

from __future__ import annotations

from datetime import date

from tests.examples import CARD
from uythac.core import report
from uythac.core.explanations import Words, explain_score, still_to_inspect
from uythac.core.model import Counts


def test_the_letter_example_in_english_and_vietnamese() -> None:
    scored = report.score(Counts(13, 20, 4, 4, 1_500_000, 98_000_000, 1, 57, 4, 5), CARD)
    words = {e.component: e for e in explain_score(scored, CARD.windows)}
    first = words["post_disbursement_inspection"]
    assert first.points_lost == 3.5
    assert first.en == "Lost 3.5 of 10 points: 7 of 20 loans were not inspected within 30 days of disbursement"
    assert first.vi == "Mất 3,5/10 điểm: 7/20 món vay không được kiểm tra trong 30 ngày sau giải ngân"
    assert words["overdue_ratio"].en == (
        "Lost 15 of 35 points: overdue principal is 1.53% of the outstanding principal (1,500,000 of 98,000,000 VND)"
    )
    assert words["overdue_ratio"].vi == "Mất 15/35 điểm: nợ quá hạn chiếm 1,53% dư nợ (1.500.000/98.000.000 đồng)"
    assert words["inactive_loans"].vi.startswith("Mất 5/20 điểm: 1/57 món vay (1,75%)")
    assert "periodic_inspection" not in words  # 4 of 4: nothing lost, nothing said


def test_words_agree_in_number_and_never_round_a_loss_away() -> None:
    one = explain_score(report.score(Counts(19, 20, loans_inactive=1, loans_seasoned=100_000), CARD), CARD.windows)
    assert one[0].en == "Lost 0.5 of 10 points: 1 of 20 loans was not inspected within 30 days of disbursement"
    assert "(<0.01%)" in one[1].en and "(<0,01%)" in one[1].vi
    assert explain_score(report.score(Counts(), CARD), CARD.windows) == []


def test_what_is_left_to_inspect_this_year_in_both_languages() -> None:
    today = date(2024, 3, 31)
    owing = Counts(year_pending=3, year_done=5, inactive_pending=1, inactive_missed=1)
    assert still_to_inspect(owing, today, CARD.windows) == Words(
        "Still to inspect in 2024: 3 of 8 savings-and-loan groups (this year's periodic inspection, by 31/12/2024); "
        "2 loans with no transaction for 90 days or more (1 past the 30 days to inspect it).",
        "Còn phải kiểm tra năm 2024: 3/8 tổ TK&VV (kiểm tra định kỳ năm 2024, hạn 31/12/2024); "
        "2 món vay không có giao dịch từ 90 ngày trở lên (1 món đã quá 30 ngày phải kiểm tra).",
    )
    one_loan = Counts(year_done=1, inactive_pending=1, inactive_done=4)
    assert still_to_inspect(one_loan, today, CARD.windows).en == (
        "Still to inspect in 2024: 1 loan with no transaction for 90 days or more."
    )
    assert still_to_inspect(Counts(year_done=2, inactive_done=1), date(2025, 1, 1), CARD.windows) == Words(
        "Nothing left to inspect in 2025.", "Năm 2025 không còn gì phải kiểm tra."
    )

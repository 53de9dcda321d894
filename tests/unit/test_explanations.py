"""The points a unit lost, in words, in English and Vietnamese, with each language's number marks."""

from __future__ import annotations

from tests.examples import CARD
from uythac.core import report
from uythac.core.explanations import explain_score
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

"""The points a unit lost, and what it must still inspect this year, in words, in English and in Vietnamese
(pure: a score or counts in, sentences out).

A commune officer reads "Mất 3,5/10 điểm: 7/20 món vay không được kiểm tra trong 30 ngày sau giải ngân",
not a numerator and a denominator: each component that lost points gets one sentence per language,
with the counts and windows of the scorecard in force. Vietnamese writes numbers with a decimal comma
and dots between thousands (3,5 điểm; 1.500.000 đồng); English the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from uythac.core.model import Counts
from uythac.core.report import ComponentScore, UnitScore
from uythac.core.scorecard import Windows, as_number, hundredths


@dataclass(frozen=True)
class Explanation:
    component: str
    points_lost: int | float
    en: str
    vi: str


@dataclass(frozen=True)
class _Numbers:
    """One component's figures, already written out in one language."""

    lost: str
    max: str
    numerator: str
    denominator: str
    missing: str  # denominator − numerator: the loans or groups that fell short
    percent: str  # numerator / denominator


def numeral(value: int | float, vietnamese: bool) -> str:
    """1234567.5 → '1,234,567.5' (en) or '1.234.567,5' (vi); at most 2 decimals, none when whole."""
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.translate(_VIETNAMESE_MARKS) if vietnamese else text


_VIETNAMESE_MARKS = str.maketrans(",.", ".,")


def _percent(numerator: int, denominator: int, vietnamese: bool) -> str:
    """The ratio as a percentage rounded half up to 2 decimals, exactly; a ratio above 0 that rounds to
    0 is "<0.01%", since one inactive loan in 100 000 already costs points (only components that lost
    points are worded, and a denominator of 0 gives full points, so `denominator` is never 0 here)."""
    rounded = hundredths(Fraction(100 * numerator, denominator))
    if rounded == 0 and numerator > 0:
        return "<" + numeral(0.01, vietnamese) + "%"
    return numeral(as_number(rounded), vietnamese) + "%"


def _numbers(component: ComponentScore, vietnamese: bool) -> _Numbers:
    return _Numbers(
        lost=numeral(as_number(component.max - component.points), vietnamese),
        max=numeral(as_number(component.max), vietnamese),
        numerator=numeral(component.numerator, vietnamese),
        denominator=numeral(component.denominator, vietnamese),
        missing=numeral(component.denominator - component.numerator, vietnamese),
        percent=_percent(component.numerator, component.denominator, vietnamese),
    )


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


def _english(component: ComponentScore, windows: Windows) -> str:
    n = _numbers(component, vietnamese=False)
    lost = f"Lost {n.lost} of {n.max} points"
    missing = component.denominator - component.numerator
    if component.key == "post_disbursement_inspection":
        was = "was" if missing == 1 else "were"
        return (
            f"{lost}: {n.missing} of {n.denominator} {_plural(component.denominator, 'loan')} {was} not inspected "
            f"within {windows.inspection_deadline_days} days of disbursement"
        )
    if component.key == "periodic_inspection":
        return (
            f"{lost}: {n.missing} of {n.denominator} savings-and-loan {_plural(component.denominator, 'group')} "
            f"registered at least {windows.group_seasoning_days} days ago had no periodic inspection "
            f"in the last {windows.scoring_days} days"
        )
    if component.key == "overdue_ratio":
        return (
            f"{lost}: overdue principal is {n.percent} of the outstanding principal "
            f"({n.numerator} of {n.denominator} VND)"
        )
    if component.key == "inactive_loans":
        return (
            f"{lost}: {n.numerator} of {n.denominator} {_plural(component.denominator, 'loan')} ({n.percent}) "
            f"disbursed at least {windows.inactive_days} days ago and still owing had no repayment "
            f"in the last {windows.inactive_days} days"
        )
    return (
        f"{lost}: {n.missing} of {n.denominator} savings-and-loan {_plural(component.denominator, 'group')} "
        f"registered at least {windows.savings_seasoning_days} days ago had no savings deposit "
        f"in the last {windows.savings_days} days"
    )


def _vietnamese(component: ComponentScore, windows: Windows) -> str:
    n = _numbers(component, vietnamese=True)
    lost = f"Mất {n.lost}/{n.max} điểm"
    if component.key == "post_disbursement_inspection":
        return (
            f"{lost}: {n.missing}/{n.denominator} món vay không được kiểm tra "
            f"trong {windows.inspection_deadline_days} ngày sau giải ngân"
        )
    if component.key == "periodic_inspection":
        return (
            f"{lost}: {n.missing}/{n.denominator} tổ TK&VV thành lập từ {windows.group_seasoning_days} ngày "
            f"trở lên không được kiểm tra định kỳ trong {windows.scoring_days} ngày qua"
        )
    if component.key == "overdue_ratio":
        return f"{lost}: nợ quá hạn chiếm {n.percent} dư nợ ({n.numerator}/{n.denominator} đồng)"
    if component.key == "inactive_loans":
        return (
            f"{lost}: {n.numerator}/{n.denominator} món vay ({n.percent}) giải ngân từ {windows.inactive_days} "
            f"ngày trở lên còn dư nợ không trả nợ trong {windows.inactive_days} ngày qua"
        )
    return (
        f"{lost}: {n.missing}/{n.denominator} tổ TK&VV thành lập từ {windows.savings_seasoning_days} ngày "
        f"trở lên không có tiền gửi tiết kiệm trong {windows.savings_days} ngày qua"
    )


def explain_score(scored: UnitScore, windows: Windows) -> list[Explanation]:
    """One explanation per component that lost points, in the scorecard's order; none for a full score."""
    return [
        Explanation(
            component.key,
            as_number(component.max - component.points),
            _english(component, windows),
            _vietnamese(component, windows),
        )
        for component in scored.components
        if component.points < component.max
    ]


@dataclass(frozen=True)
class Words:
    en: str
    vi: str


def still_to_inspect(counts: Counts, today: date, windows: Windows) -> Words:
    """What the unit must still inspect in T's year, in words: its groups without this year's periodic
    inspection (deadline 31 December) and its inactive loans whose duty is open (how many are late)."""
    year, end = today.year, f"31/12/{today.year}"
    groups, left = counts.year_pending + counts.year_done, counts.year_pending
    loans, late = counts.inactive_pending + counts.inactive_missed, counts.inactive_missed
    en: list[str] = []
    vi: list[str] = []
    if left:
        en.append(
            f"{numeral(left, False)} of {numeral(groups, False)} savings-and-loan {_plural(groups, 'group')} "
            f"(this year's periodic inspection, by {end})"
        )
        vi.append(f"{numeral(left, True)}/{numeral(groups, True)} tổ TK&VV (kiểm tra định kỳ năm {year}, hạn {end})")
    if loans:
        days = windows.inactive_inspection_days
        en.append(
            f"{numeral(loans, False)} {_plural(loans, 'loan')} with no transaction for {windows.inactive_days} days "
            f"or more" + (f" ({numeral(late, False)} past the {days} days to inspect it)" if late else "")
        )
        vi.append(
            f"{numeral(loans, True)} món vay không có giao dịch từ {windows.inactive_days} ngày trở lên"
            + (f" ({numeral(late, True)} món đã quá {days} ngày phải kiểm tra)" if late else "")
        )
    if not en:
        return Words(f"Nothing left to inspect in {year}.", f"Năm {year} không còn gì phải kiểm tra.")
    return Words(
        f"Still to inspect in {year}: " + "; ".join(en) + ".", f"Còn phải kiểm tra năm {year}: " + "; ".join(vi) + "."
    )

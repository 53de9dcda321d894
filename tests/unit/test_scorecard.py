"""The scorecard's arithmetic (band edges, half-up rounding to 2 decimals, class thresholds) and its file.

Points are integer hundredths (`Component.points`); every expected value below is worked out by hand from
the contract (docs/contract.md), and the large-denominator cases are ones where float division would pick the
wrong band or rounding.
"""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.examples import CARD, SCORECARD_TEXT
from uythac.core import scorecard
from uythac.core.model import Counts
from uythac.core.report import score
from uythac.core.scorecard import as_number, hundredths
from uythac.errors import ConfigError

DEFAULT_TEXT = SCORECARD_TEXT
BY_KEY = {c.key: c for c in CARD.components}
OVERDUE = BY_KEY["overdue_ratio"]
INACTIVE = BY_KEY["inactive_loans"]


# --- bands A: overdue_ratio -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (0, 1000, 3500),
        (5, 1000, 3500),  # 0.5 % exactly
        (6, 1000, 2800),
        (10, 1000, 2800),  # 1 %
        (11, 1000, 2000),
        (20, 1000, 2000),  # 2 %
        (21, 1000, 1000),
        (30, 1000, 1000),  # 3 %
        (31, 1000, 500),
        (50, 1000, 500),  # 5 %
        (51, 1000, 0),
        (1000, 1000, 0),
        (1, 200, 3500),
        (5_000_000, 1_000_000_001, 3500),
        (5_000_001, 1_000_000_001, 2800),
        (10_000_000, 1_000_000_001, 2800),
        (10_000_001, 1_000_000_001, 2000),
        (50_000_001, 1_000_000_001, 0),
    ],
)
def test_overdue_bands_at_their_edges(numerator: int, denominator: int, expected: int) -> None:
    assert OVERDUE.points(numerator, denominator) == expected


@pytest.mark.parametrize(
    ("numerator", "denominator", "edge", "expected"),
    [
        # each ratio is just above its band edge, but its float quotient is not
        (5_000_000_000_000_001, 1_000_000_000_000_000_093, Fraction(5, 1000), 2800),
        (10_000_000_000_000_001, 1_000_000_000_000_000_001, Fraction(1, 100), 2000),
        (20_000_000_000_000_001, 1_000_000_000_000_000_001, Fraction(2, 100), 1000),
        (30_000_000_000_000_001, 1_000_000_000_000_000_013, Fraction(3, 100), 500),
        (50_000_000_000_000_001, 1_000_000_000_000_000_001, Fraction(5, 100), 0),
    ],
)
def test_overdue_bands_are_compared_exactly_where_floats_mislead(
    numerator: int, denominator: int, edge: Fraction, expected: int
) -> None:
    assert Fraction(numerator, denominator) > edge
    assert numerator / denominator <= float(edge)  # a float comparison would keep the higher band
    assert OVERDUE.points(numerator, denominator) == expected


# --- bands B: inactive_loans ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (0, 57, 2000),  # r = 0
        (1, 1_000_000_001, 1500),  # the smallest r > 0 is no longer 0
        (1, 50, 1500),  # 2 %
        (2, 99, 1000),  # just above 2 %
        (21, 1000, 1000),
        (1, 20, 1000),  # 5 %
        (51, 1000, 500),
        (1, 10, 500),  # 10 %
        (101, 1000, 0),
        (10_000_000_000_000_001, 100_000_000_000_000_000, 0),  # above 10 % though the float quotient is 0.1
        (57, 57, 0),
    ],
)
def test_inactive_bands_at_their_edges(numerator: int, denominator: int, expected: int) -> None:
    assert INACTIVE.points(numerator, denominator) == expected


def test_zero_denominator_gives_full_points_for_every_component() -> None:
    assert [c.points(0, 0) for c in CARD.components] == [1000, 1000, 3500, 2000, 2500]


# --- linear components and half-up rounding ---------------------------------------------------


@pytest.mark.parametrize(
    ("key", "numerator", "denominator", "expected"),
    [
        ("post_disbursement_inspection", 1, 8, 125),  # 1.25 exactly
        ("post_disbursement_inspection", 13, 20, 650),
        ("periodic_inspection", 2, 3, 667),  # 6.666… → 6.67
        ("periodic_inspection", 1, 3, 333),  # 3.333… → 3.33
        ("savings_activity", 1, 7, 357),  # 3.571… → 3.57
        ("savings_activity", 5, 7, 1786),  # 17.857… → 17.86
        ("post_disbursement_inspection", 1, 16, 63),  # 0.625 → 0.63 (half up)
        ("savings_activity", 1, 16, 156),  # 1.5625 → 1.56
        ("savings_activity", 1, 8, 313),  # 3.125 → 3.13 (half up)
        ("savings_activity", 3, 40, 188),  # 1.875 → 1.88 (half up)
        ("post_disbursement_inspection", 201, 2000, 101),  # 1.005 → 1.01 (float round() gives 1.0)
        ("post_disbursement_inspection", 10_049_999, 100_000_000, 100),  # 1.0049999 → 1.00
        ("post_disbursement_inspection", 1, 2000, 1),  # 0.005 → 0.01
        ("post_disbursement_inspection", 1, 2001, 0),  # 0.004997… → 0.00
        ("savings_activity", 0, 9, 0),
        ("savings_activity", 9, 9, 2500),
    ],
)
def test_linear_points_round_half_up_to_two_decimals(key: str, numerator: int, denominator: int, expected: int) -> None:
    assert BY_KEY[key].points(numerator, denominator) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(1, 200), 1),
        (Fraction(1, 201), 0),
        (Fraction(2, 3), 67),
        (Fraction(1, 3), 33),
        (Fraction(1005, 1000), 101),
        (Fraction(2675, 1000), 268),
        (Fraction(0), 0),
        (Fraction(35), 3500),
    ],
)
def test_hundredths_rounds_half_up(value: Fraction, expected: int) -> None:
    assert hundredths(value) == expected


# --- classes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score_hundredths", "expected"),
    [
        (10000, "tot"),
        (9000, "tot"),
        (8999, "kha"),
        (7000, "kha"),
        (6999, "trung_binh"),
        (5000, "trung_binh"),
        (4999, "yeu"),
        (0, "yeu"),
    ],
)
def test_class_thresholds_90_70_50(score_hundredths: int, expected: str) -> None:
    assert CARD.classify(score_hundredths) == expected


# --- as_number ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected", "kind"),
    [(1000, 10, int), (0, 0, int), (650, 6.5, float), (7125, 71.25, float), (1, 0.01, float), (10001, 100.01, float)],
)
def test_as_number_formats(value: int, expected: float, kind: type) -> None:
    shown = as_number(value)
    assert shown == expected
    assert type(shown) is kind


def test_as_number_shows_at_most_two_decimals_exactly() -> None:
    for value in range(0, 10_001):
        text = json.dumps(as_number(value))
        assert Decimal(text) == Decimal(value) / 100, text
        assert len(text.partition(".")[2]) <= 2, text


# --- the score is the sum of the rounded components -----------------------------------------


def test_score_sums_rounded_components_at_the_report_level() -> None:
    counts = Counts(
        loans_inspected=1,
        loans_assessed=3,
        groups_inspected=1,
        groups_seasoned=3,
        overdue=0,
        outstanding=100,
        loans_inactive=0,
        loans_seasoned=0,
        groups_with_deposit=1,
        groups_saving_age=3,
    )
    scored = score(counts, CARD)
    assert [c.points for c in scored.components] == [333, 333, 3500, 2000, 833]
    assert scored.score == 6999  # exact sum 70 would be kha
    assert scored.rating == "trung_binh"


def test_score_sums_rounded_components_rounding_up() -> None:
    counts = Counts(
        loans_inspected=2,
        loans_assessed=3,
        groups_inspected=2,
        groups_seasoned=3,
        groups_with_deposit=2,
        groups_saving_age=3,
    )
    scored = score(counts, CARD)
    assert [c.points for c in scored.components] == [667, 667, 3500, 2000, 1667]
    assert scored.score == 8501  # exact sum 85


# --- a broken scorecard file ----------------------------------------------------------------


def _broken(old: str, new: str) -> str:
    assert old in DEFAULT_TEXT
    return DEFAULT_TEXT.replace(old, new, 1)


def _load(text: str) -> scorecard.Scorecard:
    return scorecard.parse(text, "my-scorecard.yaml")


def test_default_scorecard_file_loads_with_the_spec_values() -> None:
    assert [(c.key, c.max) for c in CARD.components] == [
        ("post_disbursement_inspection", 10),
        ("periodic_inspection", 10),
        ("overdue_ratio", 35),
        ("inactive_loans", 20),
        ("savings_activity", 25),
    ]
    assert CARD.windows.scoring_days == 365
    assert CARD.windows.inspection_deadline_days == 30
    assert (
        _load((Path(__file__).resolve().parents[2] / "rules" / "scorecard.yaml").read_text(encoding="utf-8")).components
        == CARD.components
    )


def test_unchanged_copy_of_the_scorecard_loads() -> None:
    assert _load(_broken("windows:", "windows:")).components == CARD.components


def test_missing_component_is_a_config_error() -> None:
    data = yaml.safe_load(DEFAULT_TEXT)
    del data["components"]["savings_activity"]
    with pytest.raises(ConfigError, match="components") as raised:
        _load(yaml.safe_dump(data))
    assert "must define exactly" in str(raised.value)
    assert "my-scorecard.yaml" in str(raised.value)


def test_unknown_component_is_a_config_error() -> None:
    text = _broken("  savings_activity:", "  savings:")
    with pytest.raises(ConfigError, match=r"components\.savings\.key: Must be one of"):
        _load(text)


def test_band_with_a_bad_percentage_is_a_config_error() -> None:
    text = _broken('{at_most: "1%", points: 28}', '{at_most: "one percent", points: 28}')
    with pytest.raises(ConfigError, match="at_most") as raised:
        _load(text)
    assert "overdue_ratio" in str(raised.value)
    assert "'one percent' is not a percentage" in str(raised.value)


def test_band_with_neither_bound_is_a_config_error() -> None:
    text = _broken('{at_most: "2%", points: 20}', "{points: 20}")
    with pytest.raises(ConfigError, match="at_most") as raised:
        _load(text)
    assert "overdue_ratio" in str(raised.value)


def test_band_with_negative_points_is_a_config_error() -> None:
    text = _broken('{at_most: "3%", points: 10}', '{at_most: "3%", points: -10}')
    with pytest.raises(ConfigError, match="points"):
        _load(text)


def test_banded_component_without_bands_is_a_config_error() -> None:
    text = _broken("    max: 10\n    points: linear\n", "    max: 10\n    points: bands\n")
    with pytest.raises(ConfigError, match="bands") as raised:
        _load(text)
    assert "post_disbursement_inspection" in str(raised.value)


def test_missing_window_is_a_config_error() -> None:
    text = _broken("  inactive_days: 90", "")
    with pytest.raises(ConfigError, match="inactive_days"):
        _load(text)


def test_unknown_class_is_a_config_error() -> None:
    text = _broken("class: tot}", "class: excellent}")
    with pytest.raises(ConfigError, match="class"):
        _load(text)


def test_text_that_is_not_yaml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="scorecard"):
        _load("windows: [\n")


@settings(max_examples=400)
@given(data=st.data())
def test_integer_points_equal_the_fraction_definition(data: st.DataObject) -> None:
    """`Component.points` works in integers; it must agree with the plain fraction reading everywhere."""
    component = data.draw(st.sampled_from(CARD.components))
    denominator = data.draw(st.integers(1, 10**12))
    numerator = data.draw(st.integers(0, denominator))
    ratio = Fraction(numerator, denominator)
    if not component.bands:
        expected = hundredths(component.max * ratio)
    else:
        band = next((b for b in component.bands if b.at_most is None or ratio <= b.at_most), None)
        expected = 0 if band is None else hundredths(band.points)
    assert component.points(numerator, denominator) == expected


def test_a_scorecard_is_known_by_what_it_says_not_how_it_is_written() -> None:
    """The store is bound to a scorecard by this digest: a comment or spacing must not unbind it."""
    reworded = "# a comment a domain expert added\n" + DEFAULT_TEXT.replace("max: 10", "max:   10")
    assert _load(reworded).digest == CARD.digest
    assert _load(_broken("max: 35", "max: 34")).digest != CARD.digest

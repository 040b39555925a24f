"""Rating formulas against worked values and their defining properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.ratings import Prior, star_average, star_lower_bound, wilson_lower_bound, z_for_confidence

counts = st.integers(min_value=0, max_value=10**9)


@pytest.mark.parametrize(
    ("confidence", "z"),
    [(0.95, 1.959964), (0.90, 1.644854), (0.99, 2.575829), (0.5, 0.674490)],
    ids=["95%", "90%", "99%", "50%"],
)
def test_z_is_the_two_sided_normal_quantile(confidence: float, z: float) -> None:
    assert z_for_confidence(confidence) == pytest.approx(z, abs=1e-6)


def test_z_stays_finite_next_to_the_ends_of_the_interval() -> None:
    assert 8.0 < z_for_confidence(0.9999999999999999) < 9.0
    assert z_for_confidence(5e-324) == 0.0


@pytest.mark.parametrize(
    "confidence", [0.0, 1.0, -0.5, 1.5], ids=["zero", "one", "negative", "above-one"]
)
def test_z_refuses_a_confidence_outside_the_open_interval(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        z_for_confidence(confidence)


def test_wilson_worked_value_42_up_7_down_at_95_percent() -> None:
    assert wilson_lower_bound(42, 7, z_for_confidence(0.95)) == pytest.approx(0.7333, abs=5e-5)


@pytest.mark.parametrize(
    ("up", "down", "expected"),
    [(0, 0, 0.0), (0, 10, 0.0), (1, 0, 0.206543), (100, 0, 0.963005)],
    ids=["no-votes", "all-down", "one-up", "hundred-up"],
)
def test_wilson_edge_values(up: int, down: int, expected: float) -> None:
    assert wilson_lower_bound(up, down, 1.959964) == pytest.approx(expected, abs=1e-5)


@given(up=counts, down=counts)
def test_wilson_bound_lies_between_zero_and_the_observed_share(up: int, down: int) -> None:
    bound = wilson_lower_bound(up, down, 1.96)
    share = up / (up + down) if up + down else 0.0
    assert 0.0 <= bound <= share + 1e-12


def test_more_of_the_same_votes_raise_the_wilson_bound() -> None:
    z = z_for_confidence(0.95)
    assert (
        wilson_lower_bound(8, 2, z)
        < wilson_lower_bound(80, 20, z)
        < wilson_lower_bound(800, 200, z)
    )


def test_star_lower_bound_worked_value_at_z_1_65() -> None:
    assert star_lower_bound([25, 20, 75, 80, 60], 1.65) == pytest.approx(3.368, abs=5e-4)


def test_star_lower_bound_of_an_unrated_item_sits_below_the_middle() -> None:
    assert 1.0 < star_lower_bound([0, 0, 0, 0, 0], 1.96) < 3.0


@given(stars=st.lists(counts, min_size=5, max_size=5), z=st.floats(min_value=0, max_value=5))
def test_star_lower_bound_never_exceeds_the_smoothed_mean(stars: list[int], z: float) -> None:
    smoothed = [n + 1 for n in stars]
    mean = sum(level * n for level, n in enumerate(smoothed, start=1)) / sum(smoothed)
    assert star_lower_bound(stars, z) <= mean + 1e-9


def test_star_average_without_prior_is_the_plain_mean() -> None:
    assert star_average([25, 20, 75, 80, 60]) == pytest.approx(910 / 260)


def test_star_average_with_prior_adds_weighted_pseudo_votes() -> None:
    assert star_average([0, 0, 0, 0, 2], Prior(mean=3.0, weight=2.0)) == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("prior", "expected"),
    [(None, None), (Prior(mean=3.5, weight=10), 3.5), (Prior(mean=3.5, weight=0), None)],
    ids=["no-prior", "prior", "weightless-prior"],
)
def test_star_average_of_an_unrated_item(prior: Prior | None, expected: float | None) -> None:
    assert star_average([0, 0, 0, 0, 0], prior) == expected

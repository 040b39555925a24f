"""Validation and rating of decoded `POST /v1/rate` bodies, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from api.batch import MAX_COUNT, InvalidInput, rate_payload

VOTES = {"id": "a", "up": 42, "down": 7}
STARS = {"id": "b", "stars": [25, 20, 75, 80, 60]}


def test_rates_votes_and_stars_in_order() -> None:
    document = rate_payload({"items": [VOTES, STARS]}, max_batch=10)
    votes, stars = document["ratings"]
    assert document["confidence"] == 0.95
    assert votes == {
        "id": "a",
        "kind": "votes",
        "count": 49,
        "up_share": pytest.approx(42 / 49),
        "lower_bound": pytest.approx(0.7333, abs=5e-5),
    }
    assert stars["kind"] == "stars"
    assert stars["count"] == 260
    assert stars["average"] == pytest.approx(3.5)


def test_confidence_sets_z_for_every_item() -> None:
    document = rate_payload({"confidence": 0.9, "items": [STARS]}, max_batch=10)
    # z = 1.645 at 90 % two-sided, next to the worked value at z = 1.65
    assert document["ratings"][0]["lower_bound"] == pytest.approx(3.369, abs=1e-3)


def test_prior_pulls_the_star_average() -> None:
    item = {"id": "new", "stars": [0, 0, 0, 0, 1], "prior": {"mean": 3, "weight": 9}}
    assert rate_payload({"items": [item]}, max_batch=1)["ratings"][0]["average"] == pytest.approx(
        3.2
    )


def test_whole_floats_count_as_integers() -> None:
    item = {"id": "a", "up": 3.0, "down": 1.0}
    assert rate_payload({"items": [item]}, max_batch=1)["ratings"][0]["count"] == 4


def test_empty_vote_counts_rate_zero_with_no_share() -> None:
    rating = rate_payload({"items": [{"id": "a", "up": 0, "down": 0}]}, max_batch=1)["ratings"][0]
    assert (rating["up_share"], rating["lower_bound"]) == (None, 0.0)


INVALID: list[Any] = [
    ("not-an-object", [VOTES], ""),
    ("items-missing", {}, "/items"),
    ("items-not-array", {"items": {"id": "a"}}, "/items"),
    ("items-empty", {"items": []}, "/items"),
    ("unknown-top-field", {"items": [VOTES], "confidance": 0.9}, "/confidance"),
    ("confidence-zero", {"items": [VOTES], "confidence": 0}, "/confidence"),
    ("confidence-one", {"items": [VOTES], "confidence": 1.0}, "/confidence"),
    ("confidence-string", {"items": [VOTES], "confidence": "0.9"}, "/confidence"),
    ("confidence-bool", {"items": [VOTES], "confidence": True}, "/confidence"),
    ("item-not-object", {"items": [VOTES, 3]}, "/items/1"),
    ("item-without-kind", {"items": [{"id": "a"}]}, "/items/0"),
    ("id-missing", {"items": [{"up": 1, "down": 1}]}, "/items/0/id"),
    ("id-empty", {"items": [{"id": "", "up": 1, "down": 1}]}, "/items/0/id"),
    ("id-number", {"items": [{"id": 7, "up": 1, "down": 1}]}, "/items/0/id"),
    ("id-too-long", {"items": [{"id": "x" * 257, "up": 1, "down": 1}]}, "/items/0/id"),
    ("up-negative", {"items": [{"id": "a", "up": -1, "down": 1}]}, "/items/0/up"),
    ("down-missing", {"items": [{"id": "a", "up": 1}]}, "/items/0/down"),
    ("down-fraction", {"items": [{"id": "a", "up": 1, "down": 1.5}]}, "/items/0/down"),
    ("down-bool", {"items": [{"id": "a", "up": 1, "down": False}]}, "/items/0/down"),
    ("up-too-big", {"items": [{"id": "a", "up": MAX_COUNT + 1, "down": 1}]}, "/items/0/up"),
    ("votes-and-stars", {"items": [{**STARS, "up": 1}]}, "/items/0/up"),
    ("stars-four-levels", {"items": [{"id": "b", "stars": [1, 2, 3, 4]}]}, "/items/0/stars"),
    ("stars-not-array", {"items": [{"id": "b", "stars": 5}]}, "/items/0/stars"),
    ("stars-negative", {"items": [{"id": "b", "stars": [1, 2, -3, 4, 5]}]}, "/items/0/stars/2"),
    ("prior-not-object", {"items": [{**STARS, "prior": 3.5}]}, "/items/0/prior"),
    (
        "prior-mean-low",
        {"items": [{**STARS, "prior": {"mean": 0.5, "weight": 1}}]},
        "/items/0/prior/mean",
    ),
    (
        "prior-weight-negative",
        {"items": [{**STARS, "prior": {"mean": 3, "weight": -1}}]},
        "/items/0/prior/weight",
    ),
    (
        "prior-unknown-field",
        {"items": [{**STARS, "prior": {"mean": 3, "weight": 1, "n": 2}}]},
        "/items/0/prior/n",
    ),
    ("unknown-field-escaped", {"items": [{**VOTES, "a/b": 1}]}, "/items/0/a~1b"),
]


@pytest.mark.parametrize(
    ("payload", "pointer"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_input_names_the_field(payload: object, pointer: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        rate_payload(payload, max_batch=10)
    assert (caught.value.pointer, caught.value.status) == (pointer, 422)
    assert str(caught.value).startswith(pointer or "(body)")


def test_a_batch_over_the_limit_is_too_large_not_invalid() -> None:
    with pytest.raises(InvalidInput) as caught:
        rate_payload({"items": [VOTES] * 4}, max_batch=3)
    assert (caught.value.pointer, caught.value.status) == ("/items", 413)
    assert "limit of 3" in caught.value.message

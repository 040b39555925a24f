"""Numbers as both services take them from flags, and the scaler from triggers: ASCII only."""

from __future__ import annotations

import pytest

from common.numbers import parse_decimal, parse_integer

ARABIC_INDIC_5 = "\u0665"
FULL_WIDTH_5 = "\uff15"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("5", 5.0, id="integer"),
        pytest.param("-0.25", -0.25, id="negative"),
        pytest.param("1e3", 1000.0, id="exponent"),
        pytest.param(".5", 0.5, id="leading-dot"),
        pytest.param(ARABIC_INDIC_5, None, id="arabic-indic"),
        pytest.param(FULL_WIDTH_5, None, id="full-width"),
        pytest.param("nan", None, id="nan"),
        pytest.param("inf", None, id="inf"),
        pytest.param("1e400", None, id="overflow"),
        pytest.param("1_0", None, id="underscore"),
        pytest.param("0x10", None, id="hex"),
    ],
)
def test_parse_decimal(text: str, expected: float | None) -> None:
    assert parse_decimal(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("6000", 6000, id="digits"),
        pytest.param("0010", 10, id="leading-zeros"),
        pytest.param("\u0666\u0660\u0660\u0660", None, id="arabic-indic"),
        pytest.param(FULL_WIDTH_5, None, id="full-width"),
        pytest.param("-1", None, id="negative"),
        pytest.param("+1", None, id="plus"),
        pytest.param("1_000", None, id="underscore"),
        pytest.param("1e3", None, id="exponent"),
        pytest.param("", None, id="empty"),
        pytest.param("9" * 19, None, id="nineteen-digits"),
    ],
)
def test_parse_integer_takes_ascii_digits_only(text: str, expected: int | None) -> None:
    assert parse_integer(text) == expected

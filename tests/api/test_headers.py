"""RateLimit-Policy, RateLimit and Retry-After values."""

from __future__ import annotations

import pytest

from api.headers import policy_value, ratelimit_value, seconds_until_token


@pytest.mark.parametrize(
    ("capacity", "refill_per_s", "expected"),
    [(100, 50, '"bucket";q=100;w=2'), (10, 3, '"bucket";q=10;w=4'), (5, 1000, '"bucket";q=5;w=1')],
    ids=["default", "window-rounded-up", "window-at-least-one"],
)
def test_policy_states_burst_and_refill_window(
    capacity: float, refill_per_s: float, expected: str
) -> None:
    assert policy_value(capacity, refill_per_s) == expected


@pytest.mark.parametrize(
    ("tokens", "refill_per_s", "expected"),
    [
        (37.25, 50, '"bucket";r=37;t=0'),
        (1.0, 50, '"bucket";r=1;t=0'),
        (0.99, 50, '"bucket";r=0;t=1'),
        (0.0, 0.25, '"bucket";r=0;t=4'),
    ],
    ids=["tokens-left", "last-token", "almost-one", "slow-refill"],
)
def test_ratelimit_gives_whole_tokens_and_seconds_to_the_next(
    tokens: float, refill_per_s: float, expected: str
) -> None:
    assert ratelimit_value(tokens, refill_per_s) == expected.encode()


def test_seconds_until_token_is_never_zero_while_empty() -> None:
    assert seconds_until_token(0.999999, 1e9) == 1
    assert seconds_until_token(1.0, 1e-9) == 0

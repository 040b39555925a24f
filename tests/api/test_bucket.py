"""The token bucket against a fake clock: no sleeping, every instant chosen by the test."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.bucket import TokenBucket


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def drain(bucket: TokenBucket) -> int:
    granted = 0
    while bucket.try_acquire():
        granted += 1
    return granted


def test_starts_full_and_grants_exactly_the_capacity_in_a_burst() -> None:
    bucket = TokenBucket(capacity=10, refill_per_s=5, clock=FakeClock())
    assert drain(bucket) == 10
    assert (bucket.granted_total, bucket.denied_total) == (10, 1)


def test_refills_lazily_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=10, refill_per_s=5, clock=clock)
    drain(bucket)
    clock.advance(0.5)
    assert bucket.available() == pytest.approx(2.5)
    assert drain(bucket) == 2
    assert bucket.tokens_left == pytest.approx(0.5)


def test_never_refills_past_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=10, refill_per_s=5, clock=clock)
    bucket.try_acquire()
    clock.advance(3600)
    assert drain(bucket) == 10
    clock.advance(3600)
    assert bucket.available() == 10.0


def test_a_denied_request_takes_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=2, refill_per_s=1, clock=clock)
    drain(bucket)
    clock.advance(0.75)
    for _ in range(5):
        assert not bucket.try_acquire()
    assert bucket.available() == pytest.approx(0.75)
    assert bucket.denied_total == 6


def test_a_clock_that_goes_back_neither_adds_nor_removes_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=4, refill_per_s=1, clock=clock)
    drain(bucket)
    clock.advance(-100)
    assert bucket.available() == 0.0
    assert not bucket.try_acquire()


@pytest.mark.parametrize(
    ("tokens_missing", "refill_per_s", "expected_s"),
    [(0.0, 50, 0.0), (1.0, 50, 0.02), (0.25, 1, 0.25), (1.0, 0.1, 10.0)],
    ids=["token-available", "empty-fast-refill", "partial-token", "empty-slow-refill"],
)
def test_retry_after_is_the_time_until_one_whole_token(
    tokens_missing: float, refill_per_s: float, expected_s: float
) -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=1, refill_per_s=refill_per_s, clock=clock)
    if tokens_missing:
        bucket.try_acquire()
        clock.advance((1.0 - tokens_missing) / refill_per_s)
    assert bucket.retry_after_s() == pytest.approx(expected_s)


def test_state_is_a_consistent_snapshot_at_the_clock_time() -> None:
    clock = FakeClock(start_s=50.0)
    bucket = TokenBucket(capacity=3, refill_per_s=2, clock=clock)
    drain(bucket)
    clock.advance(1.0)
    state = bucket.state()
    assert (state.now_s, state.tokens, state.capacity, state.refill_per_s) == (51.0, 2.0, 3.0, 2.0)
    assert (state.granted_total, state.denied_total) == (3, 1)


@pytest.mark.parametrize(
    ("capacity", "refill_per_s"),
    [(0.5, 1), (math.inf, 1), (math.nan, 1), (10, 0), (10, -1), (10, math.inf)],
    ids=[
        "capacity-below-one",
        "capacity-inf",
        "capacity-nan",
        "rate-zero",
        "rate-negative",
        "rate-inf",
    ],
)
def test_refuses_a_bucket_that_cannot_work(capacity: float, refill_per_s: float) -> None:
    with pytest.raises(ValueError, match=r"capacity|refill_per_s"):
        TokenBucket(capacity, refill_per_s, FakeClock())


steps = st.lists(
    st.tuples(st.floats(min_value=0, max_value=10, allow_nan=False), st.integers(0, 20)),
    max_size=60,
)


@given(
    capacity=st.floats(min_value=1, max_value=1000),
    refill_per_s=st.floats(min_value=0.001, max_value=1000),
    steps=steps,
)
def test_never_grants_more_than_capacity_plus_refill(
    capacity: float, refill_per_s: float, steps: list[tuple[float, int]]
) -> None:
    """Any advances and acquires: granted <= capacity + rate x elapsed, 0 <= tokens <= capacity."""
    clock = FakeClock()
    bucket = TokenBucket(capacity, refill_per_s, clock)
    elapsed_s = 0.0
    attempts = 0
    for advance_s, acquires in steps:
        clock.advance(advance_s)
        elapsed_s += advance_s
        for _ in range(acquires):
            bucket.try_acquire()
        attempts += acquires
        assert 0.0 <= bucket.tokens_left <= capacity
        assert 0.0 <= bucket.available() <= capacity
        allowed = capacity + refill_per_s * elapsed_s
        assert bucket.granted_total <= allowed * (1 + 1e-12)
        assert bucket.granted_total + bucket.denied_total == attempts

"""The forecast's maths on synthetic loads, one fake second at a time."""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from scaler.forecast import (
    HISTORY_S,
    DemandForecast,
    DemandHistory,
    correlation_at_lag,
    find_pattern,
)

QUIET_PER_S = 12.0
LEAD_S = 30
BURST_BAR = 3 * QUIET_PER_S  # above this, a burst


@dataclass(frozen=True)
class Load:
    per_s: list[float]
    starts: list[int]  # each burst's first second

    @property
    def mean_interval_s(self) -> float:
        return statistics.mean(b - a for a, b in zip(self.starts, self.starts[1:], strict=False))


def agent_bursts(seed: int, seconds: int = HISTORY_S, bursts: int | None = None) -> Load:
    """Quiet 12/s, bursts of 6-10x for 20-40 s every P in 120..200 s (+-5 % each),
    +-10 % noise on every second."""
    rng = random.Random(seed)
    period = rng.uniform(120, 200)
    per_s = [QUIET_PER_S] * seconds
    starts: list[int] = []
    at = rng.uniform(10, 60)
    while at < seconds and (bursts is None or len(starts) < bursts):
        start, length, times = int(at), rng.randint(20, 40), rng.uniform(6, 10)
        starts.append(start)
        for second in range(start, min(seconds, start + length)):
            per_s[second] = QUIET_PER_S * times
        at += period * rng.uniform(0.95, 1.05)
    return Load([value * rng.uniform(0.9, 1.1) for value in per_s], starts)


def replay(per_s: Iterable[float]) -> tuple[DemandForecast, list[float | None]]:
    """Feed the forecast one second at a time; its forecast after each second."""
    forecast, seen = DemandForecast(), []
    for second, value in enumerate(per_s):
        forecast.record(float(second), value)
        seen.append(forecast.forecast(LEAD_S))
    return forecast, seen


def lead_before(start: int, seen: list[float | None]) -> int:
    """Seconds before `start` during which the forecast already said burst."""
    lead = 0
    while start - lead - 1 >= 0 and (seen[start - lead - 1] or 0.0) >= BURST_BAR:
        lead += 1
    return lead


def test_the_history_is_a_ring_of_1800_doubles() -> None:
    history = DemandHistory()
    for second in range(HISTORY_S + 10):
        history.record(second + 0.4, float(second))
    assert history.nbytes == 8 * HISTORY_S
    assert history.seconds_held == HISTORY_S
    series = history.series()
    assert (len(series), series[0], series[-1]) == (HISTORY_S, 10.0, HISTORY_S + 9.0)


def test_a_missed_second_repeats_the_one_before_and_a_second_twice_keeps_the_last() -> None:
    history = DemandHistory(seconds=10)
    for now_s, value in ((0.1, 1.0), (1.2, 2.0), (1.9, 3.0), (4.0, 5.0)):
        history.record(now_s, value)
    assert history.series() == [1.0, 3.0, 3.0, 3.0, 5.0]
    assert history.window(3, 99) == [3.0, 5.0]


def test_a_copy_is_independent() -> None:
    original = DemandForecast()
    original.record(0.0, 5.0)
    copied = original.copy()
    copied.record(1.0, 7.0)
    assert original.history.series() == [5.0]
    assert copied.history.series() == [5.0, 7.0]


@pytest.mark.parametrize("seed", range(1, 9), ids=lambda seed: f"seed-{seed}")
def test_recurring_bursts_the_period_is_found(seed: int) -> None:
    load = agent_bursts(seed)
    pattern = find_pattern(load.per_s)
    assert pattern is not None and pattern.usable
    assert pattern.period_s == pytest.approx(load.mean_interval_s, rel=0.04)


@pytest.mark.parametrize("seed", range(1, 9), ids=lambda seed: f"seed-{seed}")
def test_recurring_bursts_each_burst_from_the_fourth_is_forecast_about_a_lead_ahead(
    seed: int,
) -> None:
    load = agent_bursts(seed, seconds=1200)
    _, seen = replay(load.per_s)
    leads = [lead_before(start, seen) for start in load.starts[3:] if start < 1200]
    assert leads and all(LEAD_S - 5 <= lead <= 2 * LEAD_S for lead in leads), leads


@pytest.mark.parametrize("seed", range(1, 5), ids=lambda seed: f"seed-{seed}")
def test_nothing_is_forecast_before_the_history_holds_two_periods(seed: int) -> None:
    load = agent_bursts(seed, seconds=1200)
    _, seen = replay(load.per_s)
    two_periods = round(2 * 0.95 * load.mean_interval_s)
    assert all(value is None for value in seen[:two_periods])


@pytest.mark.parametrize("seed", range(1, 5), ids=lambda seed: f"seed-{seed}")
def test_white_noise_has_no_pattern(seed: int) -> None:
    rng = random.Random(seed)
    _, seen = replay(rng.uniform(0, 100) for _ in range(HISTORY_S))
    assert all(value is None for value in seen)


@pytest.mark.parametrize("at", [300, 900, 1500], ids=lambda at: f"at-{at}s")
def test_a_step_has_no_pattern(at: int) -> None:
    rng = random.Random(at)
    steps = (
        QUIET_PER_S * (8 if second >= at else 1) * rng.uniform(0.9, 1.1)
        for second in range(HISTORY_S)
    )
    _, seen = replay(steps)
    assert all(value is None for value in seen)


def test_a_flat_load_has_no_pattern() -> None:
    forecast, seen = replay([QUIET_PER_S] * 600)
    assert forecast.pattern is None and all(value is None for value in seen)


@pytest.mark.parametrize("seed", range(1, 7), ids=lambda seed: f"seed-{seed}")
def test_a_pattern_that_stops_is_gone_within_one_period(seed: int) -> None:
    load = agent_bursts(seed, seconds=HISTORY_S, bursts=7)
    forecast, seen = replay(load.per_s)
    expected = load.starts[-1] + round(load.mean_interval_s)  # the burst that never came
    period = round(load.mean_interval_s)
    assert (seen[expected - 5] or 0.0) >= BURST_BAR  # it was expected
    assert all(value is None for value in seen[expected + period :])
    assert forecast.pattern is None or not forecast.pattern.usable


@pytest.mark.parametrize("seed", range(1, 5), ids=lambda seed: f"seed-{seed}")
def test_the_next_burst_is_announced(seed: int) -> None:
    load = agent_bursts(seed, seconds=1200)
    coming = next(start for start in load.starts if start > 900)
    forecast, _ = replay(load.per_s[: coming - 40])
    announced = forecast.next_burst_in_s()
    assert announced is not None and abs(announced - 40) <= 0.1 * load.mean_interval_s


def test_no_pattern_no_next_burst() -> None:
    forecast, _ = replay([QUIET_PER_S] * 100)
    assert forecast.next_burst_in_s() is None and forecast.forecast(LEAD_S) is None


@pytest.mark.parametrize(
    ("values", "lag", "expected"),
    [
        pytest.param([1.0, 2.0, 1.0, 2.0, 1.0, 2.0], 2, 1.0, id="repeats"),
        pytest.param([1.0, 2.0, 1.0, 2.0, 1.0, 2.0], 1, -1.0, id="opposite"),
        pytest.param([3.0] * 6, 2, 0.0, id="flat"),
        pytest.param([1.0, 2.0], 1, 0.0, id="too-short"),
    ],
)
def test_correlation_at_lag(values: list[float], lag: int, expected: float) -> None:
    assert correlation_at_lag(values, lag) == pytest.approx(expected)

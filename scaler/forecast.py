"""Recurring bursts: a target's demand over the last 30 minutes, its period, and the
demand expected over the next seconds. Pure: no asyncio, time passed in.

AI agents send bursts on a schedule (cron runs, polling loops). A reactive HPA either
keeps the burst's pods through every quiet gap (a long scale-down window) or gives them
back and refuses the start of every burst (a short one). Knowing the period lets the
scaler ask for the pods `lead` seconds before the burst, and a short window give them
back after it.

- `DemandHistory`: the demand once a second, in a fixed ring of 1800 doubles.
- `find_pattern`: the period, from the autocorrelation of 5 s bucket means (lags 20 s
  to 900 s, an interior peak that rises well above the dip before it), refined at 1 s,
  then checked on the last period alone: its confidence is the lower of the two
  correlations, so a pattern that stops loses it within a burst's length.
- `DemandForecast.forecast`: the most demand seen over the same phase's next `lead`
  seconds (a little more, for jitter) one period ago and two periods ago, the lower of
  the two: a burst is expected where both periods had one, and no larger than the
  smaller (the demand itself corrects it at the next sync). The union of the two would
  rise earlier and fall later, for pods that wait.
"""

from __future__ import annotations

import math
import operator
import statistics
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

HISTORY_S = 1800  # seconds of demand kept per target
BUCKET_S = 5  # the period search runs on bucket means: 360 points, not 1800
MIN_PERIOD_S, MAX_PERIOD_S = 20, 900
REPEATS = 2  # the history must hold this many periods of the pattern, plus a margin
MARGIN_S = 20
MIN_CONFIDENCE = 0.5  # correlation below this: no pattern
MIN_PROMINENCE = 0.3  # the peak must stand this far above the lowest correlation before it
HARMONIC_SHARE = 0.7  # a shorter period whose peak is this close to the best one wins
JITTER_SHARE = 0.05  # bursts may come this share of a period early or late
ESTIMATE_EVERY_S = 15.0  # the period is searched again this often, not every second


@dataclass(frozen=True, slots=True)
class Pattern:
    """A period found in the demand, and how well the history repeats at it (0..1)."""

    period_s: int
    confidence: float

    @property
    def usable(self) -> bool:
        return self.confidence >= MIN_CONFIDENCE

    @property
    def slack_s(self) -> int:
        return math.ceil(JITTER_SHARE * self.period_s)


class DemandHistory:
    """The demand once a second over the last `seconds`, oldest overwritten first.

    A second with no record (a slow poll cycle) repeats the value before it; a second
    recorded twice keeps the later value.
    """

    __slots__ = ("_count", "_newest", "_values")

    def __init__(self, seconds: int = HISTORY_S) -> None:
        self._values = array("d", [0.0]) * seconds  # from bytes() it over-allocates 6 %
        self._newest: int | None = None  # the second of the newest value
        self._count = 0

    @property
    def capacity_s(self) -> int:
        return len(self._values)

    @property
    def seconds_held(self) -> int:
        return self._count

    @property
    def newest_s(self) -> int | None:
        return self._newest

    @property
    def nbytes(self) -> int:
        return self._values.buffer_info()[1] * self._values.itemsize

    @property
    def state_bytes(self) -> int:
        return sys.getsizeof(self) + sys.getsizeof(self._values)

    def record(self, now_s: float, demand_per_s: float) -> None:
        second = math.floor(now_s)
        value = demand_per_s if math.isfinite(demand_per_s) and demand_per_s > 0 else 0.0
        size = len(self._values)
        if self._newest is not None and second < self._newest:
            return  # an older second than the newest: the clock is monotonic, never here
        if self._newest is not None:
            previous = self._values[self._newest % size]
            for gap in range(max(self._newest + 1, second - size + 1), second):
                self._values[gap % size] = previous
            self._count = min(size, self._count + second - self._newest)
        else:
            self._count = 1
        self._values[second % size] = value
        self._newest = second

    def series(self) -> list[float]:
        """Every second held, oldest first."""
        if self._newest is None:
            return []
        return self.window(self._newest - self._count + 1, self._newest)

    def window(self, first_s: int, last_s: int) -> list[float]:
        """The values of seconds `first_s`..`last_s` that are held, oldest first."""
        if self._newest is None:
            return []
        first_s = max(first_s, self._newest - self._count + 1)
        last_s = min(last_s, self._newest)
        size = len(self._values)
        if last_s < first_s:
            return []
        start, stop = first_s % size, last_s % size
        if start <= stop:
            return self._values[start : stop + 1].tolist()
        return self._values[start:].tolist() + self._values[: stop + 1].tolist()

    def copy(self) -> DemandHistory:
        other = DemandHistory(len(self._values))
        other._values[:] = self._values
        other._newest, other._count = self._newest, self._count
        return other


Prefix = tuple[list[float], list[float]]
"""Running sums of the values and of their squares, from 0."""


def correlation_at_lag(values: Sequence[float], lag: int, prefix: Prefix | None = None) -> float:
    """Pearson's r between the series and itself `lag` points later (0 when flat).

    `prefix`, `prefix_sums(values)`, saves recomputing the sums for each lag."""
    n = len(values)
    m = n - lag
    if lag <= 0 or m < 2:
        return 0.0
    sums, squares = prefix or prefix_sums(values)
    sum_a, sum_b = sums[m], sums[n] - sums[lag]
    var_a = squares[m] - sum_a * sum_a / m
    var_b = squares[n] - squares[lag] - sum_b * sum_b / m
    if var_a <= 1e-12 * m or var_b <= 1e-12 * m:
        return 0.0
    products: float = sum(map(operator.mul, values[:m], values[lag:]))
    cross = products - sum_a * sum_b / m
    return max(-1.0, min(1.0, cross / math.sqrt(var_a * var_b)))


def prefix_sums(values: Sequence[float]) -> Prefix:
    sums, squares = [0.0], [0.0]
    for value in values:
        sums.append(sums[-1] + value)
        squares.append(squares[-1] + value * value)
    return sums, squares


def bucket_means(values: Sequence[float], size: int) -> list[float]:
    """Means of consecutive `size` values, aligned to the end (the oldest partial
    bucket is left out)."""
    start = len(values) % size
    return [sum(values[i : i + size]) / size for i in range(start, len(values), size)]


def find_pattern(series: Sequence[float]) -> Pattern | None:
    """The period of the demand (1 s points, oldest first), or None when none repeats
    over `REPEATS` periods; a pattern found with a low confidence is not `usable`."""
    coarse = bucket_means(series, BUCKET_S)
    lag = _coarse_period(coarse)
    if lag is None:
        return None
    prefix = prefix_sums(series)
    candidates = range(max(MIN_PERIOD_S, (lag - 1) * BUCKET_S), (lag + 1) * BUCKET_S + 1)
    period_s = max(candidates, key=lambda p: correlation_at_lag(series, p, prefix))
    overall = correlation_at_lag(series, period_s, prefix)
    return Pattern(period_s, round(min(overall, _recent_correlation(series, period_s)), 3))


def _coarse_period(coarse: Sequence[float]) -> int | None:
    """The lag, in buckets, of the first autocorrelation peak close to the highest."""
    low = MIN_PERIOD_S // BUCKET_S
    high = min(MAX_PERIOD_S // BUCKET_S, (len(coarse) - MARGIN_S // BUCKET_S) // REPEATS)
    if high <= low:
        return None
    prefix = prefix_sums(coarse)
    r = {lag: correlation_at_lag(coarse, lag, prefix) for lag in range(low - 1, high + 2)}
    peaks = [
        lag
        for lag in range(low, high + 1)
        if r[lag] >= max(r[lag - 1], r[lag + 1])
        and r[lag] >= MIN_CONFIDENCE
        and r[lag] - min(r[k] for k in range(low - 1, lag)) >= MIN_PROMINENCE
    ]
    if not peaks:
        return None
    best = max(r[lag] for lag in peaks)
    return next(lag for lag in peaks if r[lag] >= HARMONIC_SHARE * best)


def _recent_correlation(series: Sequence[float], period_s: int) -> float:
    """How well the last period repeats the one before it, allowing for jitter."""
    slack = math.ceil(JITTER_SHARE * period_s)
    recent = series[-period_s:]
    best = 0.0
    for shift in range(period_s - slack, period_s + slack + 1):
        if len(series) < period_s + shift:
            break
        earlier = series[len(series) - period_s - shift : len(series) - shift]
        pair = [*earlier, *recent]  # r of (earlier, recent) as a lag of one period
        best = max(best, correlation_at_lag(pair, period_s))
    return best


class DemandForecast:
    """One target's history and pattern; `record` once a second, `forecast` per lead."""

    __slots__ = ("_estimated_at", "_every_s", "history", "pattern")

    def __init__(self, *, seconds: int = HISTORY_S, every_s: float = ESTIMATE_EVERY_S) -> None:
        self.history = DemandHistory(seconds)
        self.pattern: Pattern | None = None
        self._every_s = every_s
        self._estimated_at = -math.inf

    @property
    def state_bytes(self) -> int:
        """The memory this target's forecast holds: the ring, a few numbers."""
        pattern = 0 if self.pattern is None else sys.getsizeof(self.pattern)
        return sys.getsizeof(self) + self.history.state_bytes + pattern

    def record(self, now_s: float, demand_per_s: float) -> None:
        """The demand now; the period is searched again every `every_s` seconds."""
        self.history.record(now_s, demand_per_s)
        if now_s - self._estimated_at >= self._every_s:
            self._estimated_at = now_s
            self.pattern = find_pattern(self.history.series())

    def forecast(self, lead_s: float) -> float | None:
        """The demand expected over the next `lead_s` seconds from the newest second:
        the lower of the most seen over that window of the phase one and two periods
        ago; None with no usable pattern."""
        pattern, newest = self.pattern, self.history.newest_s
        if pattern is None or not pattern.usable or newest is None:
            return None
        period, ahead = pattern.period_s, math.ceil(lead_s) + pattern.slack_s
        seen = [
            max(values)
            for k in range(1, REPEATS + 1)
            if (values := self.history.window(newest + 1 - k * period, newest + ahead - k * period))
        ]
        return min(seen) if len(seen) == REPEATS else None

    def next_burst_in_s(self) -> int | None:
        """Seconds until the next burst starts, as the last two periods had it (a rise
        past halfway from their median to their peak); None without a usable pattern."""
        pattern, newest = self.pattern, self.history.newest_s
        if pattern is None or not pattern.usable or newest is None:
            return None
        period = pattern.period_s
        past = self.history.window(newest + 1 - REPEATS * period, newest)
        quiet, peak = statistics.median(past), max(past)
        if peak <= quiet:
            return None
        bar = quiet + (peak - quiet) / 2
        # The phase of each second from now (d = 0..period) in the two past periods.
        past_periods = [
            self.history.window(newest - k * period, newest + period - k * period)
            for k in range(1, REPEATS + 1)
        ]
        if any(len(values) != period + 1 for values in past_periods):
            return None
        aligned = list(map(min, *past_periods))
        for d in range(1, period + 1):
            if aligned[d] >= bar > aligned[d - 1]:
                return d
        return None

    def copy(self) -> DemandForecast:
        other = DemandForecast(seconds=self.history.capacity_s, every_s=self._every_s)
        other.history = self.history.copy()
        other.pattern = self.pattern
        other._estimated_at = self._estimated_at
        return other

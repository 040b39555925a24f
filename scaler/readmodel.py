"""What the readers see of one target: the read model its poller publishes.

The poller owns the network and the pods' series; after each poll it publishes a
`Reading` (the aggregates over the windows asked for, each pod's last answer, the
failures) into the target's `TargetView`. The RPCs, `/metrics` and `/v1/targets` read
only views, never the poller: the shape of the HTTP add-on's `pinger.counts()`. Ages
and freshness are taken on the view's clock when read, so the HTTP view, the metrics
and the RPCs agree on what is fresh and how old it is.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from scaler.aggregation import Aggregate, combine
from scaler.bucket_state import BucketState
from scaler.forecast import DemandForecast
from scaler.held_state import HeldState
from scaler.pod_errors import PodErrorReason
from scaler.scaling import Answer, answer
from scaler.target_key import TargetKey
from scaler.trigger import TriggerConfig

Clock = Callable[[], float]
Compute = Callable[[float], Aggregate]
"""The writer's aggregate over a window nobody asked for before, computed now."""
STALE_AFTER_POLLS = 3  # a pod's last answer counts this many intervals after it came
PRECOMPUTED_WINDOWS = 8  # the windows asked last, whose answers each cycle computes


@dataclass(frozen=True, slots=True)
class PodReading:
    """One pod as its last poll left it."""

    address: str
    state: BucketState | None
    last_ok_at: float
    demand_per_s: float | None  # None: seen once in this boot, no rate yet
    restarts: int
    error: str | None


PodRow = tuple[
    str, tuple[str, str, float, float, float, float, float, float] | None, float,
    float | None, int, str | None,
]  # fmt: skip
"""A `PodReading` as plain values, its state as `BucketState`'s fields in order: what a
poll worker sends (a tuple of floats and strings unpickles about 20 times faster than
the dataclasses), turned into `PodReading`s only when a reader looks at the pods."""


def pod_row(reading: PodReading) -> PodRow:
    state = reading.state
    fields = None if state is None else (
        state.pod, state.boot_id, state.uptime_s, state.capacity, state.refill_per_s,
        state.tokens, state.granted_total, state.denied_total,
    )  # fmt: skip
    return (
        reading.address, fields, reading.last_ok_at, reading.demand_per_s, reading.restarts,
        reading.error,
    )  # fmt: skip


def pod_from_row(row: PodRow) -> PodReading:
    address, fields, last_ok_at, demand_per_s, restarts, error = row
    state = None if fields is None else BucketState(*fields)
    return PodReading(address, state, last_ok_at, demand_per_s, restarts, error)


@dataclass(frozen=True, slots=True)
class ActivatorReading:
    """One activator as its last answer left it."""

    address: str
    state: HeldState | None
    last_ok_at: float
    error: str | None


@dataclass(frozen=True, slots=True)
class Reading:
    """What one poll of a target published: a plain value, replaced whole each time."""

    aggregates: Mapping[float, Aggregate]  # by window, for the windows asked for
    pods: tuple[PodReading, ...] = ()
    pod_errors: Mapping[PodErrorReason, int] = field(default_factory=dict)
    discovery_error: str | None = None
    activators: tuple[ActivatorReading, ...] = ()
    newest_ok_at: float = -math.inf  # the last answer of any pod
    pod_rows: tuple[PodRow, ...] = ()  # instead of `pods`: the same, as plain values


@dataclass(frozen=True, slots=True)
class PodView:
    address: str
    state: BucketState | None
    fresh: bool
    age_s: float
    demand_per_s: float | None  # None: seen once in this boot, no rate yet
    restarts: int
    error: str | None


@dataclass(frozen=True, slots=True)
class TargetSnapshot:
    target: TargetKey
    taken_at: float
    cycles: int
    window_s: float  # the longest window any ScaledObject of this target asked for
    aggregate: Aggregate
    data_age_s: float
    discovery_error: str | None
    problem: str | None  # why there is no fresh data; None when there is
    pods: tuple[PodView, ...]
    pod_errors: Mapping[PodErrorReason, int]  # failed polls of single pods, by reason
    activators: tuple[ActivatorReading, ...] = ()
    forecast: ForecastSnapshot | None = None  # None: no trigger asked for a forecast


@dataclass(frozen=True, slots=True)
class ForecastSnapshot:
    """A forecasting target's pattern as its last search left it."""

    history_s: int  # seconds of demand held
    period_s: int | None  # None: no period found
    confidence: float | None
    usable: bool  # confident enough to forecast
    next_burst_in_s: int | None
    state_bytes: int


class TargetView:
    """One target for its readers: the last `Reading`, the answers computed from it,
    and which windows the readers ask for (the writer computes those each cycle)."""

    def __init__(
        self, target: TargetKey, *, poll_interval_s: float, clock: Clock = time.monotonic
    ) -> None:
        self.target = target
        self.poll_interval_s = poll_interval_s
        self.cycles = 0  # full poll cycles published
        self.version = 0  # readings published, between cycles too
        self.last_used_at = clock()
        self.window_s = 0.0  # the longest averaging window asked for
        self._windows: dict[float, None] = {}  # the last windows asked, oldest first
        self._clock = clock
        self._reading = Reading(aggregates={})
        self._extra: dict[float, Aggregate] = {}  # windows computed since the reading
        self._answers: dict[int, tuple[TriggerConfig, Answer]] = {}  # by id(trigger)
        self._compute: Compute | None = None
        self._published = asyncio.Event()
        # The demand once a second and its pattern, kept once a trigger asks for a
        # forecast; the writer records into it when it publishes a full cycle.
        self.forecast: DemandForecast | None = None
        self._pods: tuple[PodReading, ...] | None = None  # the reading's, once asked for

    @property
    def fresh_for_s(self) -> float:
        return STALE_AFTER_POLLS * self.poll_interval_s

    @property
    def windows(self) -> tuple[float, ...]:
        """The windows each cycle computes: the last ones asked, and the longest."""
        return (*self._windows, self.window_s)

    def touch(self, window_s: float, *, forecast: bool = False) -> None:
        """Someone asked about this target: it is in use, and the writer computes the
        answers for `window_s` at each cycle (and keeps the demand's history from now
        on if the trigger asked for a `forecast`)."""
        self.last_used_at = self._clock()
        if forecast and self.forecast is None:
            self.forecast = DemandForecast()
        self._windows.pop(window_s, None)
        self._windows[window_s] = None
        if len(self._windows) > PRECOMPUTED_WINDOWS:
            del self._windows[next(iter(self._windows))]
        self.window_s = max(self.window_s, window_s)

    def computes_with(self, compute: Compute) -> None:
        """The writer's way to compute a window that is not in the last reading yet."""
        self._compute = compute

    def publish(self, reading: Reading, *, cycle_done: bool) -> None:
        """The writer's new reading; `cycle_done` when it ends a full poll cycle."""
        self._reading = reading
        self._pods = None
        self._extra.clear()
        self._answers.clear()
        self.version += 1
        if cycle_done:
            self._record_demand(reading)
            self.cycles += 1
        self._published.set()
        self._published = asyncio.Event()

    def _record_demand(self, reading: Reading) -> None:
        """One second of the forecast's history: the demand over the last two polls."""
        agg = reading.aggregates.get(self.window_s)
        if self.forecast is not None and agg is not None and agg.has_data:
            self.forecast.record(self._clock(), agg.fast_demand_per_s)

    def adopt_forecast(self, other: TargetView) -> None:
        """Carry on `other`'s demand history: the same ScaledObject now names this
        target (a static `endpoints` list changed with the pods)."""
        if other.forecast is not None and other is not self:
            self.forecast = other.forecast.copy()
            self._answers.clear()

    def aggregate(self, window_s: float) -> Aggregate:
        """The target over `window_s`, as the last reading left it."""
        found = self._reading.aggregates.get(window_s) or self._extra.get(window_s)
        if found is None:
            found = self._extra[window_s] = self._missing(window_s)
        return found

    def _missing(self, window_s: float) -> Aggregate:
        if self._compute is not None:
            return self._compute(window_s)
        return combine([], now=self._clock())  # no pods read yet: no data

    def answer(self, trigger: TriggerConfig) -> Answer:
        """What the RPCs and `/metrics` say of `trigger` now; computed once per reading."""
        cached = self._answers.get(id(trigger))
        if cached is None or cached[0] is not trigger:
            found = answer(trigger, self.aggregate(trigger.window_s), self._forecast(trigger))
            cached = self._answers[id(trigger)] = (trigger, found)
        return cached[1]

    def _forecast(self, trigger: TriggerConfig) -> float | None:
        if trigger.forecast != "recurring" or self.forecast is None:
            return None
        return self.forecast.forecast(trigger.forecast_lead_s)

    def forecast_snapshot(self) -> ForecastSnapshot | None:
        forecast = self.forecast
        if forecast is None:
            return None
        pattern = forecast.pattern
        return ForecastSnapshot(
            history_s=forecast.history.seconds_held,
            period_s=None if pattern is None else pattern.period_s,
            confidence=None if pattern is None else pattern.confidence,
            usable=pattern is not None and pattern.usable,
            next_burst_in_s=forecast.next_burst_in_s(),
            state_bytes=forecast.state_bytes,
        )

    def has_fresh_data(self) -> bool:
        return self.aggregate(self.window_s).has_data

    def data_age_s(self) -> float:
        """Seconds since any pod of the target last answered, now (inf if none ever did)."""
        return self._clock() - self._reading.newest_ok_at

    def snapshot(self, *, with_pods: bool = True) -> TargetSnapshot:
        """The target now, read-only, on the view's clock; over the longest window asked.
        `with_pods`: each pod too."""
        now = self._clock()
        agg = self.aggregate(self.window_s)
        return TargetSnapshot(
            target=self.target,
            taken_at=now,
            cycles=self.cycles,
            window_s=self.window_s,
            aggregate=agg,
            data_age_s=self.data_age_s(),
            discovery_error=self._reading.discovery_error,
            problem=None if agg.has_data else self.failure_summary(),
            pod_errors=dict(self._reading.pod_errors),
            pods=tuple(self._pod_view(pod, now) for pod in self.pods()) if with_pods else (),
            activators=self._reading.activators,
            forecast=self.forecast_snapshot(),
        )

    def pods(self) -> tuple[PodReading, ...]:
        """Each pod as the last reading left it."""
        if self._pods is None:
            rows = self._reading.pod_rows
            self._pods = self._reading.pods + tuple(pod_from_row(row) for row in rows)
        return self._pods

    def _pod_view(self, pod: PodReading, now: float) -> PodView:
        age_s = now - pod.last_ok_at
        return PodView(
            address=pod.address,
            state=pod.state,
            fresh=pod.state is not None and age_s <= self.fresh_for_s,
            age_s=age_s if math.isfinite(age_s) else math.inf,
            demand_per_s=pod.demand_per_s,
            restarts=pod.restarts,
            error=pod.error,
        )

    def failure_summary(self) -> str:
        """Why there is no fresh data, in one line for an UNAVAILABLE status."""
        label, pods = self.target.label, self.pods()
        if self.cycles == 0:
            return f"target {label}: first poll still running"
        if not pods and self.target.activator is not None:
            return f"target {label}: no pods found, and no activator answered"
        if not pods:
            return f"target {label}: {self._reading.discovery_error or 'no pods found'}"
        failing = [f"{pod.address} {pod.error}" for pod in pods if pod.error]
        more = f" (and {len(failing) - 5} more)" if len(failing) > 5 else ""
        detail = "; ".join(failing[:5]) + more or "not polled yet"
        return f"target {label}: no fresh data from {len(pods)} pod(s): {detail}"

    async def wait_first_cycle(self, timeout_s: float) -> None:
        await self.wait_cycle_after(0, timeout_s)

    async def wait_cycle_after(self, cycle: int, timeout_s: float | None = None) -> None:
        """Wait until a cycle later than `cycle` has been published (or the timeout passes)."""
        try:
            async with asyncio.timeout(timeout_s):
                while self.cycles <= cycle:
                    await self._published.wait()
        except TimeoutError:
            pass

    async def wait_reading_after(self, version: int) -> None:
        """Wait until a reading later than `version` is published: a cycle, or news
        between cycles (a new pod, an activator's first held request)."""
        while self.version <= version:
            await self._published.wait()

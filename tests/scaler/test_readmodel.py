"""The forecast in the read model: what a target's view records once a second, and what
its triggers answer from it, on a fake clock."""

from __future__ import annotations

import dataclasses

import pytest

from scaler.aggregation import Aggregate
from scaler.bucket_state import BucketState
from scaler.discovery.static import StaticDiscovery
from scaler.pod_errors import PodError
from scaler.policy import HostPolicy
from scaler.poller import TargetPoller
from scaler.readmodel import Reading, TargetView
from scaler.target_key import TargetKey
from scaler.targets import Targets
from scaler.trigger import TriggerConfig, parse_trigger
from tests.scaler.test_forecast import BURST_BAR, agent_bursts

ANY_HOST = HostPolicy(("*",))
FORECAST = {"forecast": "recurring", "targetPerPod": "8", "activationDemand": "50"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def trigger(endpoints: str = "127.0.0.1:1", **metadata: str) -> TriggerConfig:
    return parse_trigger({"endpoints": endpoints, **metadata}, ANY_HOST)


def agg(demand: float) -> Aggregate:
    return Aggregate(
        demand_per_s=demand, fast_demand_per_s=demand, window_demand_per_s=demand,
        deficit_tokens=0.0, refill_per_s_per_pod=10.0, capacity_per_pod=20.0,
        pods_total=1, pods_fresh=1, pods_rated=1, pods_failed=0,
        extrapolated=False, data_age_s=0.1,
    )  # fmt: skip


def publish_second(view: TargetView, clock: FakeClock, second: int, demand: float) -> None:
    clock.now = second + 0.5
    view.publish(Reading(aggregates={view.window_s: agg(demand)}), cycle_done=True)


def test_the_view_keeps_no_history_until_a_trigger_asks_for_a_forecast() -> None:
    clock = FakeClock()
    view = TargetView(trigger().target, poll_interval_s=1.0, clock=clock)
    view.touch(5.0)
    publish_second(view, clock, 0, 12.0)
    assert view.forecast is None and view.snapshot().forecast is None
    view.touch(5.0, forecast=True)
    publish_second(view, clock, 1, 12.0)
    assert view.forecast is not None and view.forecast.history.series() == [12.0]


@pytest.mark.parametrize("seed", range(1, 4), ids=lambda seed: f"seed-{seed}")
def test_a_forecasting_trigger_asks_for_the_burst_before_it_comes(seed: int) -> None:
    load = agent_bursts(seed, seconds=1200)
    clock = FakeClock()
    forecasting, plain = trigger(**FORECAST), trigger(targetPerPod="8")
    view = TargetView(forecasting.target, poll_interval_s=1.0, clock=clock)
    view.touch(forecasting.window_s, forecast=True)
    burst = load.starts[4]
    for second in range(burst - 10):
        publish_second(view, clock, second, load.per_s[second])
        found = view.answer(forecasting)
        assert found.metric_value >= load.per_s[second]  # never below the demand now
        assert view.answer(plain).metric_value == load.per_s[second]
    found = view.answer(forecasting)
    assert found.forecast_per_s is not None and found.metric_value >= BURST_BAR
    assert found.active is False  # activation follows the demand now, 12/s
    assert found.desired_replicas is not None and found.desired_replicas >= 5
    snap = view.snapshot().forecast
    assert snap is not None and snap.usable and snap.period_s is not None
    assert snap.next_burst_in_s is not None and snap.next_burst_in_s <= 10 + snap.period_s // 10
    assert snap.state_bytes < 16_000


def test_a_cycle_without_fresh_data_records_nothing() -> None:
    clock = FakeClock()
    view = TargetView(trigger().target, poll_interval_s=1.0, clock=clock)
    view.touch(5.0, forecast=True)
    stale = dataclasses.replace(agg(50.0), pods_fresh=0)
    view.publish(Reading(aggregates={view.window_s: stale}), cycle_done=True)
    assert view.forecast is not None and view.forecast.history.seconds_held == 0


async def never(host: str, port: int) -> BucketState:
    raise PodError("connect", "nobody listens")


async def test_a_scaled_object_whose_pods_change_keeps_its_history() -> None:
    def make_poller(target: TargetKey) -> TargetPoller:
        return TargetPoller(target, StaticDiscovery(target.endpoints), never, poll_interval_s=1.0)

    targets = Targets(make_poller, first_poll_timeout_s=0.1)
    try:
        before = await targets.view_for(
            "edge", "api", trigger("127.0.0.1:1", **FORECAST), wait=False
        )
        assert before.forecast is not None
        before.forecast.record(0.0, 12.0)
        before.forecast.record(1.0, 99.0)
        after = await targets.view_for(
            "edge", "api", trigger("127.0.0.1:1,127.0.0.1:2", **FORECAST), wait=False
        )
        assert after is not before and after.forecast is not None
        assert after.forecast.history.series() == [12.0, 99.0]
        other = await targets.view_for("edge", "other", trigger("127.0.0.1:3"), wait=False)
        assert other.forecast is None  # no forecast asked: no history kept
    finally:
        await targets.close()

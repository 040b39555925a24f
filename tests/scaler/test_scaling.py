"""A trigger's Answer from an aggregate: what GetMetricSpec, GetMetrics, IsActive and
/metrics all read."""

from __future__ import annotations

import pytest

from scaler.aggregation import Aggregate
from scaler.policy import HostPolicy
from scaler.scaling import answer
from scaler.trigger import parse_trigger

ANY_HOST = HostPolicy(("*",))
DEFICIT, HIGH_BAR, EXPLICIT = (
    {"metric": "deficit"},
    {"activationDemand": "100"},
    {"targetPerPod": "30"},
)


def agg(demand: float, refill: float | None, fresh: int = 2) -> Aggregate:
    return Aggregate(
        demand_per_s=demand, fast_demand_per_s=demand, window_demand_per_s=demand,
        deficit_tokens=30.0, refill_per_s_per_pod=refill, capacity_per_pod=100.0,
        pods_total=2, pods_fresh=fresh, pods_rated=fresh, pods_failed=0,
        extrapolated=False, data_age_s=0.5,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("metadata", "aggregate", "expected"),
    [
        pytest.param({}, agg(90.0, 50.0), (True, 90.0, 40.0, True, 3), id="demand"),
        pytest.param(DEFICIT, agg(0.0, 50.0), (True, 30.0, 80.0, False, 1), id="deficit"),
        pytest.param(HIGH_BAR, agg(90.0, 50.0), (True, 90.0, 40.0, False, 3), id="inactive"),
        pytest.param({}, agg(90.0, None), (True, 90.0, None, True, None), id="target-unknown"),
        pytest.param(EXPLICIT, agg(90.0, None), (True, 90.0, 30.0, True, 3), id="explicit"),
        pytest.param({}, agg(0.0, 50.0, fresh=0), (False, 0.0, 40.0, False, 1), id="no-data"),
    ],
)
def test_answer(
    metadata: dict[str, str],
    aggregate: Aggregate,
    expected: tuple[bool, float, float | None, bool, int | None],
) -> None:
    trigger = parse_trigger({"endpoints": "127.0.0.1:9000", **metadata}, ANY_HOST)
    found = answer(trigger, aggregate)
    got = (found.has_data, found.metric_value, found.target_per_pod, found.active)
    assert (*got, found.desired_replicas) == pytest.approx(expected)


FORECAST = {"forecast": "recurring"}


@pytest.mark.parametrize(
    ("metadata", "demand", "forecast", "expected"),
    [
        pytest.param(FORECAST, 12.0, 90.0, (90.0, 90.0, 12), id="burst-ahead"),
        pytest.param(FORECAST, 60.0, 20.0, (60.0, 20.0, 8), id="never-below-demand-now"),
        pytest.param(FORECAST, 12.0, None, (12.0, None, 2), id="no-pattern"),
        pytest.param({}, 12.0, 90.0, (12.0, None, 2), id="trigger-without-forecast"),
    ],
)
def test_a_forecast_raises_the_value_never_lowers_it(
    metadata: dict[str, str],
    demand: float,
    forecast: float | None,
    expected: tuple[float, float | None, int],
) -> None:
    trigger = parse_trigger(
        {"endpoints": "127.0.0.1:9000", "targetPerPod": "8", **metadata}, ANY_HOST
    )
    found = answer(trigger, agg(demand, 10.0), forecast)
    got = (found.metric_value, found.forecast_per_s, found.desired_replicas)
    assert got == expected
    assert found.active is (demand > 0)

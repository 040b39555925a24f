"""What the scaler answers for one trigger from one target's aggregate: pure functions.

`target_per_pod` feeds GetMetricSpec, `metric_value` GetMetrics and `is_active`
IsActive; `desired_replicas` is what the HPA will make of the first two. `answer`
puts them together: the RPCs and `/metrics` read the same `Answer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scaler.aggregation import Aggregate
from scaler.trigger import TriggerConfig


def target_per_pod(trigger: TriggerConfig, agg: Aggregate) -> float | None:
    """Target per pod for the HPA's AverageValue: the trigger's, or from what pods reported.

    None while no pod has ever answered: a guess would stick, since KEDA writes the HPA's
    target only when it (re)builds the HPA.
    """
    if trigger.target_per_pod is not None:
        return trigger.target_per_pod
    per_pod = agg.refill_per_s_per_pod if trigger.metric == "demand" else agg.capacity_per_pod
    return None if per_pod is None else per_pod * trigger.target_utilization


def metric_value(trigger: TriggerConfig, agg: Aggregate) -> float:
    return agg.demand_per_s if trigger.metric == "demand" else agg.deficit_tokens


def is_active(trigger: TriggerConfig, agg: Aggregate) -> bool:
    """Demand above `activationDemand`, or a request held: somebody waits for a pod."""
    return agg.demand_per_s > trigger.activation_demand or agg.held_requests > 0


@dataclass(frozen=True, slots=True)
class Answer:
    """One trigger's answers from one aggregate."""

    has_data: bool  # False: GetMetrics and IsActive fail with UNAVAILABLE
    metric_value: float  # with a forecast: the larger of the metric now and the forecast
    target_per_pod: float | None  # None: not known yet, GetMetricSpec fails
    active: bool  # from the demand now, never from a forecast
    forecast_per_s: float | None = None  # the most demand expected over the trigger's lead

    @property
    def desired_replicas(self) -> int | None:
        if self.target_per_pod is None:
            return None
        return desired_replicas(self.metric_value, self.target_per_pod)


def answer(trigger: TriggerConfig, agg: Aggregate, forecast_per_s: float | None = None) -> Answer:
    """`forecast_per_s`, the demand expected over the trigger's lead (None: no pattern),
    raises the metric value only, and only for a trigger that asked for it: scale-down
    stays driven by what happens, and activation by the demand now."""
    forecast = forecast_per_s if trigger.forecast == "recurring" else None
    value = metric_value(trigger, agg)
    return Answer(
        has_data=agg.has_data,
        metric_value=value if forecast is None else max(value, forecast),
        target_per_pod=target_per_pod(trigger, agg),
        active=is_active(trigger, agg),
        forecast_per_s=forecast,
    )


MAX_REPLICAS = 2**31 - 1  # the HPA's replica counts are int32


def desired_replicas(value: float, target: float) -> int:
    """What the HPA asks for with an AverageValue target: ceil(value / target), in
    [1, MAX_REPLICAS]; never raises, whatever the floats (a tiny target, NaN, inf)."""
    if not math.isfinite(value) or not math.isfinite(target) or value <= 0 or target <= 0:
        return 1
    ratio = value / target
    if not ratio < MAX_REPLICAS:  # inf when the division overflows
        return MAX_REPLICAS
    return max(1, math.ceil(ratio - 1e-9))

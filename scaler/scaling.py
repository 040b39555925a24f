"""What the scaler answers for one trigger from one target's aggregate: pure functions.

`target_per_pod` feeds GetMetricSpec, `metric_value` GetMetrics and `is_active`
IsActive; `desired_replicas` is what the HPA will make of the first two.
"""

from __future__ import annotations

import math

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
    return agg.demand_per_s > trigger.activation_demand


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

"""The measured series and the arithmetic on them (pure: no I/O, no clock).

Each path's desired replica count is what an HPA with an `AverageValue` target asks
for: ceil(value / target per pod), within the ScaledObject's bounds (1..20 here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

MIN_REPLICAS, MAX_REPLICAS = 1, 20
REACHED_SHARE = 0.85


@dataclass(frozen=True)
class Sample:
    """One reading of everything, `t_s` seconds after the demo started."""

    t_s: float
    phase: str
    offered_per_s: float
    answered_per_s: float | None
    denied_per_s: float | None
    direct_demand_per_s: float | None
    direct_target_per_pod: float | None
    direct_active: bool | None
    direct_replicas: int | None
    prometheus_demand_per_s: float | None
    prometheus_fill_tokens: float | None
    prometheus_replicas: int | None


COLUMNS = tuple(field.name for field in fields(Sample))


def desired_replicas(value: float | None, target_per_pod: float | None) -> int | None:
    """ceil(value / target), clamped to MIN_REPLICAS..MAX_REPLICAS; None without data."""
    if value is None or target_per_pod is None or target_per_pod <= 0:
        return None
    wanted = math.ceil(round(value, 3) / target_per_pod)  # KEDA passes values to 3 decimals
    return max(MIN_REPLICAS, min(MAX_REPLICAS, wanted))


def seconds_until(
    samples: Sequence[Sample], start_s: float, end_s: float, reached: Callable[[Sample], bool]
) -> float | None:
    """Seconds from `start_s` to the first sample in [start_s, end_s] for which `reached`."""
    for sample in samples:
        if start_s <= sample.t_s <= end_s and reached(sample):
            return sample.t_s - start_s
    return None


def ratio(slow_s: float | None, fast_s: float | None) -> float | None:
    if slow_s is None or fast_s is None or fast_s <= 0:
        return None
    return slow_s / fast_s


@dataclass(frozen=True)
class Summary:
    step_start_s: float
    step_end_s: float
    step_per_s: float
    target_per_pod: float
    right_replicas: int
    direct_reached_s: float | None
    prometheus_reached_s: float | None
    direct_replicas_s: float | None
    prometheus_replicas_s: float | None

    @property
    def reached_ratio(self) -> float | None:
        return ratio(self.prometheus_reached_s, self.direct_reached_s)

    @property
    def replicas_ratio(self) -> float | None:
        return ratio(self.prometheus_replicas_s, self.direct_replicas_s)


def summarize(
    samples: Sequence[Sample],
    *,
    step_start_s: float,
    step_end_s: float,
    step_per_s: float,
    target_per_pod: float,
) -> Summary:
    """When each path first showed 85 % of the step, and first asked for enough replicas,
    while the step lasted."""
    threshold = REACHED_SHARE * step_per_s
    right = desired_replicas(step_per_s, target_per_pod) or MIN_REPLICAS

    def at_least(value: float | int | None, floor: float) -> bool:
        return value is not None and value >= floor

    def until(reached: Callable[[Sample], bool]) -> float | None:
        return seconds_until(samples, step_start_s, step_end_s, reached)

    return Summary(
        step_start_s=step_start_s,
        step_end_s=step_end_s,
        step_per_s=step_per_s,
        target_per_pod=target_per_pod,
        right_replicas=right,
        direct_reached_s=until(lambda s: at_least(s.direct_demand_per_s, threshold)),
        prometheus_reached_s=until(lambda s: at_least(s.prometheus_demand_per_s, threshold)),
        direct_replicas_s=until(lambda s: at_least(s.direct_replicas, right)),
        prometheus_replicas_s=until(lambda s: at_least(s.prometheus_replicas, right)),
    )

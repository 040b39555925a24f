"""A read-only picture of one target at one instant, for `/v1/targets` and `/metrics`.

The poller takes it on its own clock, so that the HTTP view, the metrics and the RPCs
agree on what is fresh and how old it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scaler.aggregation import Aggregate
from scaler.bucket_state import BucketState
from scaler.pod_errors import PodErrorReason
from scaler.series import PodSeries
from scaler.target_key import TargetKey


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


def pod_view(address: str, series: PodSeries, now: float, fresh_for_s: float) -> PodView:
    age_s = now - series.last_ok_at
    return PodView(
        address=address,
        state=series.state,
        fresh=series.state is not None and age_s <= fresh_for_s,
        age_s=age_s if math.isfinite(age_s) else math.inf,
        demand_per_s=series.fast_rate(),
        restarts=series.restarts,
        error=series.last_error,
    )

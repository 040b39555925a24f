"""Demand from one target's pods: pure sums over their series, time passed in.

A pod seen once (or once since a restart) has no rate yet, so a busy past does not
pass for demand now. The reported demand is the larger of the rate over the last two
polls at least 0.5 s apart (rising load shows within one poll) and the average over
`window` seconds (falling load fades smoothly; a pod watched for part of the window
counts for that part).

The sums come in two steps: `partial` sums one shard of the pods, and `combine` turns
the partials of disjoint shards into the target's `Aggregate`. Every ratio is taken
in `combine`, so the answer does not depend on how the pods were split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scaler.held_state import HeldState
from scaler.series import PodSeries, fast_rate, window_rate


@dataclass(frozen=True, slots=True)
class Partial:
    """Some of a target's pods, summed: what a poller of a shard hands on each cycle."""

    pods_total: int
    answered: int  # pods that ever answered
    fresh: int  # answered within `fresh_for_s`
    rated: int  # fresh and seen twice in this boot (or young): the window's average
    fast_rated: int  # fresh and answered twice in this boot: the last second's rate
    failed: int  # whose last poll failed
    fast_per_s: float
    window_per_s: float
    deficit_tokens: float
    refill_per_s: float  # summed over the fresh pods, as is capacity
    capacity: float
    newest_ok_at: float


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One target's pods, summed. A plain value handed from the poller to the RPCs."""

    demand_per_s: float
    fast_demand_per_s: float
    window_demand_per_s: float
    deficit_tokens: float
    refill_per_s_per_pod: float | None  # None until a pod has answered
    capacity_per_pod: float | None
    pods_total: int
    pods_fresh: int
    pods_rated: int  # fresh pods seen twice in this boot: the ones demand comes from
    pods_failed: int
    extrapolated: bool
    data_age_s: float
    held_requests: int = 0  # waiting in the activators for a ready pod
    held_demand_per_s: float = 0.0  # what they add to `demand_per_s`
    activators_fresh: int = 0

    @property
    def has_data(self) -> bool:
        """Fresh pods, or a fleet at zero (no pod listed) whose activators answer."""
        return self.pods_fresh > 0 or (self.pods_total == 0 and self.activators_fresh > 0)


def partial(pods: Iterable[PodSeries], now: float, window_s: float, fresh_for_s: float) -> Partial:
    """Sum one shard of a target's pods as they stand at `now`."""
    pods = list(pods)
    answered = [pod for pod in pods if pod.state is not None]
    fresh = [pod for pod in answered if now - pod.last_ok_at <= fresh_for_s]
    rated = [pod for pod in fresh if len(pod.samples) >= 2]
    fast = [rate for rate in (fast_rate(pod.samples) for pod in rated) if rate is not None]
    states = [pod.state for pod in fresh if pod.state]
    return Partial(
        pods_total=len(pods),
        answered=len(answered),
        fresh=len(fresh),
        rated=len(rated),
        fast_rated=len(fast),
        failed=sum(pod.failed_last_poll for pod in pods),
        fast_per_s=sum(fast),
        window_per_s=sum(window_rate(pod.samples, window_s) or 0.0 for pod in rated),
        deficit_tokens=sum(state.capacity - state.tokens for state in states),
        refill_per_s=sum(state.refill_per_s for state in states),
        capacity=sum(state.capacity for state in states),
        newest_ok_at=max((pod.last_ok_at for pod in pods), default=-math.inf),
    )


def combine(
    partials: Iterable[Partial],
    now: float,
    fallback_refill: float | None = None,
    fallback_capacity: float | None = None,
    held: Iterable[HeldState] = (),
) -> Aggregate:
    """Sum the fresh pods; scale up to the pods that answered before and went stale;
    add what the activators hold (`held`: their fresh states).

    A pod that missed a poll keeps its last rate while its last answer is younger than
    `fresh_for_s`; after that the total is extrapolated from the pods that answer.
    A pod that never answered contributes no estimate: it may never have served
    anything (a wrong port, a pod not started), so 1 pod at 20/s beside 3 silent ones
    reads 20/s, not 80/s. A young pod seen once counts its requests since boot over the
    window (all of them came within it), and no last-second rate yet. A pod up for a
    while but seen once (listed late) has no rate of its own yet: it counts at the
    other pods' last-second average, never at their window's, which still holds the
    load that has just moved to it. With no pod rated at all (a new scaler beside busy
    pods), the value is 0 rather than their past. Refill and capacity fall back to the
    last values seen, if any.
    """
    parts = list(partials)
    answered = sum(part.answered for part in parts)
    fresh = sum(part.fresh for part in parts)
    rated = sum(part.rated for part in parts)
    fast_rated = sum(part.fast_rated for part in parts)
    fast = sum(part.fast_per_s for part in parts)
    windowed = sum(part.window_per_s for part in parts)
    # The window's sum is extrapolated over stale pods only, never over pods seen once:
    # the load they take has just moved from the others, whose window still holds it,
    # so that would count it twice each time the fleet grows (for one read, 3 -> 9 pods
    # read 322/s for 123/s). The last second's rate is extrapolated over pods seen once
    # too, but not over young ones (their boot is too near: the others' last second may
    # still hold the load before it moved to them).
    seen_once = fresh - rated
    young_unrated = rated - fast_rated
    rate_scale = (answered - seen_once) / rated if rated else 0.0
    fast_scale = (answered - young_unrated) / fast_rated if fast_rated else 0.0
    level_scale = answered / fresh if fresh else 0.0
    newest_ok = max((part.newest_ok_at for part in parts), default=-math.inf)
    held = list(held)
    held_requests = sum(state.held for state in held)
    held_demand = sum(state.demand_per_s for state in held)
    return Aggregate(
        demand_per_s=max(fast * fast_scale, windowed * rate_scale) + held_demand,
        fast_demand_per_s=fast * fast_scale,
        window_demand_per_s=windowed * rate_scale,
        deficit_tokens=sum(part.deficit_tokens for part in parts) * level_scale + held_requests,
        refill_per_s_per_pod=_mean([part.refill_per_s for part in parts], fresh, fallback_refill),
        capacity_per_pod=_mean([part.capacity for part in parts], fresh, fallback_capacity),
        pods_total=sum(part.pods_total for part in parts),
        pods_fresh=fresh,
        pods_rated=rated,
        pods_failed=sum(part.failed for part in parts),
        extrapolated=0 < rated < answered - seen_once or 0 < fresh < answered,
        data_age_s=now - newest_ok,
        held_requests=held_requests,
        held_demand_per_s=held_demand,
        activators_fresh=len(held),
    )


def aggregate(
    pods: Iterable[PodSeries],
    now: float,
    window_s: float,
    fresh_for_s: float,
    fallback_refill_per_s: float | None = None,
    fallback_capacity: float | None = None,
    held: Iterable[HeldState] = (),
) -> Aggregate:
    """All of a target's pods in one shard: `combine` of one `partial`."""
    shard = partial(pods, now, window_s, fresh_for_s)
    return combine([shard], now, fallback_refill_per_s, fallback_capacity, held)


def _mean(sums: list[float], count: int, default: float | None) -> float | None:
    return sum(sums) / count if count else default

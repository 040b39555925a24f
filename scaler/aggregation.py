"""Demand from bucket states: pure maths over one target's pods, time passed in.

Each pod's demand is the growth of its `granted_total + denied_total` counter over
its own `uptime_s` between two answers the scaler received itself, so network delays
do not bend the rate and a busy past does not pass for demand now: a pod seen once
(or once since a restart) has no rate yet. The reported demand is the larger of the
rate over the last two polls at least 0.5 s apart (rising load shows within one poll)
and the average over `window` seconds (falling load fades smoothly; a pod watched for
part of the window counts for that part).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from scaler.bucket_state import BucketState

FAST_SPAN_S = 0.5


@dataclass(frozen=True, slots=True)
class Sample:
    uptime_s: float
    requested_total: float


class PodHistory(Protocol):
    """What the maths reads of one pod (`series.PodSeries`)."""

    @property
    def state(self) -> BucketState | None: ...
    @property
    def samples(self) -> Sequence[Sample]: ...
    @property
    def last_ok_at(self) -> float: ...
    @property
    def failed_last_poll(self) -> bool: ...


def fast_rate(samples: Sequence[Sample]) -> float | None:
    """Tokens/s since the newest sample at least `FAST_SPAN_S` older than the last one
    (the last two polls, at the default interval), or since the oldest when none is;
    None when seen only once in this boot.

    Not over a shorter gap: two answers a few milliseconds apart (a pod a new target
    copied from another target's series, then polled at once) would read the clumps in
    which requests arrive as a rate many times the true one.
    """
    if len(samples) < 2:
        return None
    newest = samples[-1]
    for index in range(len(samples) - 2, -1, -1):
        if newest.uptime_s - samples[index].uptime_s >= FAST_SPAN_S:
            return _rate(samples[index], newest)
    return _rate(samples[0], newest)


def window_rate(samples: Sequence[Sample], window_s: float) -> float | None:
    """Tokens/s over the last `window_s` seconds of pod time (None: no rate).

    What the pod was asked for over the part of the window it was watched, divided by
    the whole window: a pod watched for 2 s of a 5 s window adds 2/5 of its rate. So
    the pods' window rates sum to what the fleet was asked over the window, however
    the load moved between them in it: when a fleet grows, the older pods' windows
    still hold the load that has just moved to the new pods, and dividing the new
    pods' share by their 2 s alone would count it twice (16 pods read 219/s for a
    true 123/s, 2 s after 13 of them joined).
    """
    if len(samples) < 2:
        return None
    newest = samples[-1]
    start = samples[-2]
    for sample in reversed(samples):
        start = sample
        if newest.uptime_s - sample.uptime_s >= window_s:
            break
    watched_s = newest.uptime_s - start.uptime_s
    return _rate(start, newest) * min(1.0, watched_s / window_s) if window_s > 0 else 0.0


def _rate(older: Sample, newer: Sample) -> float:
    elapsed_s = newer.uptime_s - older.uptime_s
    if elapsed_s <= 0:
        return 0.0
    return max(0.0, (newer.requested_total - older.requested_total) / elapsed_s)


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

    @property
    def has_data(self) -> bool:
        return self.pods_fresh > 0


def aggregate(
    pods: Iterable[PodHistory],
    now: float,
    window_s: float,
    fresh_for_s: float,
    fallback_refill_per_s: float | None = None,
    fallback_capacity: float | None = None,
) -> Aggregate:
    """Sum the fresh pods; scale up to the pods that answered before and went stale.

    A pod that missed a poll keeps its last rate while its last answer is younger than
    `fresh_for_s`; after that the total is extrapolated from the pods that answer.
    A pod that never answered contributes no estimate: it may never have served
    anything (a wrong port, a pod not started), so 1 pod at 20/s beside 3 silent ones
    reads 20/s, not 80/s. A pod seen once has no rate yet and adds nothing for that
    poll: a new scaler beside busy pods reports 0 rather than their past, and a new
    pod's load, which moved from pods whose window still holds it, is not counted
    twice. Refill and capacity fall back to the last values seen, if any.
    """
    pods = list(pods)
    answered = [pod for pod in pods if pod.state is not None]
    fresh = [pod for pod in answered if now - pod.last_ok_at <= fresh_for_s]
    rated = [pod for pod in fresh if len(pod.samples) >= 2]
    fast = sum(fast_rate(pod.samples) or 0.0 for pod in rated)
    windowed = sum(window_rate(pod.samples, window_s) or 0.0 for pod in rated)
    deficit = sum(pod.state.capacity - pod.state.tokens for pod in fresh if pod.state)
    # Extrapolate over stale pods only, never over pods that never answered. A pod seen
    # once has no rate yet, and is not counted at the rated pods' average either: the
    # load it takes has just moved from them, and their window still holds it, so
    # counting it twice would overstate demand each time the fleet grows (for one read,
    # 3 -> 9 pods read 322/s for 123/s).
    seen_once = len(fresh) - len(rated)
    rate_scale = (len(answered) - seen_once) / len(rated) if rated else 0.0
    level_scale = len(answered) / len(fresh) if fresh else 0.0
    newest_ok = max((pod.last_ok_at for pod in pods), default=-math.inf)
    states = [pod.state for pod in fresh if pod.state]
    return Aggregate(
        demand_per_s=max(fast, windowed) * rate_scale,
        fast_demand_per_s=fast * rate_scale,
        window_demand_per_s=windowed * rate_scale,
        deficit_tokens=deficit * level_scale,
        refill_per_s_per_pod=_mean((s.refill_per_s for s in states), fallback_refill_per_s),
        capacity_per_pod=_mean((s.capacity for s in states), fallback_capacity),
        pods_total=len(pods),
        pods_fresh=len(fresh),
        pods_rated=len(rated),
        pods_failed=sum(pod.failed_last_poll for pod in pods),
        extrapolated=0 < len(rated) < len(answered) - seen_once or 0 < len(fresh) < len(answered),
        data_age_s=now - newest_ok,
    )


def _mean(values: Iterable[float], default: float | None) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else default

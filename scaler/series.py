"""What one pod said, one boot at a time, and the rates it gives: the samples the
scaler keeps of each pod.

The only mutable state of the demand maths: the poller records each answer here, and
`aggregation` sums the pods. A restart (new `boot_id`, or a counter going back) starts
a new series, so counters are never differenced across boots. Each pod's demand is the
growth of its `granted_total + denied_total` counter over its own `uptime_s` between
two answers the scaler received itself, so network delays do not bend the rate.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from scaler.bucket_state import BucketState

FAST_SPAN_S = 0.5


@dataclass(frozen=True, slots=True)
class Sample:
    uptime_s: float
    requested_total: float


def fast_rate(samples: Sequence[Sample]) -> float | None:
    """Tokens/s since the newest sample at least `FAST_SPAN_S` older than the last one
    (the last two polls, at the default interval), or since the oldest when none is;
    None when seen only once in this boot. Between two answers the scaler took itself:
    a young pod's boot sample (`PodSeries.observe`) is for the window's average, since
    its rate since boot is no rate of the last second.

    Not over a shorter gap: two answers a few milliseconds apart (a pod a new target
    copied from another target's series, then polled at once) would read the clumps in
    which requests arrive as a rate many times the true one.
    """
    first = 1 if samples and samples[0].uptime_s == 0.0 else 0  # skip the boot sample
    if len(samples) - first < 2:
        return None
    newest = samples[-1]
    for index in range(len(samples) - 2, first - 1, -1):
        if newest.uptime_s - samples[index].uptime_s >= FAST_SPAN_S:
            return _rate(samples[index], newest)
    return _rate(samples[first], newest)


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


@dataclass(slots=True)
class PodSeries:
    """What one pod said, one boot at a time."""

    address: str
    state: BucketState | None = None
    samples: deque[Sample] = field(default_factory=deque)
    last_ok_at: float = -math.inf
    last_error: str | None = None
    failed_last_poll: bool = False
    restarts: int = 0

    def copy(self) -> PodSeries:
        """An independent copy: another target's poller goes on from these samples."""
        return replace(self, samples=deque(self.samples))

    def observe(self, state: BucketState, now: float, keep_s: float, young_s: float = 0.0) -> None:
        """Record one answer. A pod first seen (in this boot) with `uptime_s` under
        `young_s` gets its boot as a first sample too: every request it was asked for
        came within the history kept, so the rate since boot is already a rate over the
        window, and a pod that has just joined counts at once instead of after its
        second answer."""
        previous = self.state
        new_boot = previous is not None and previous.boot_id != state.boot_id
        went_back = previous is not None and (
            state.uptime_s < previous.uptime_s or state.requested_total < previous.requested_total
        )
        if new_boot or went_back:
            # A restart starts a new series: never difference counters across boots.
            self.samples.clear()
            self.restarts += 1
        if not self.samples and 0.0 < state.uptime_s < young_s:
            self.samples.append(Sample(0.0, 0.0))  # the boot: every counter starts at 0
        if not self.samples or state.uptime_s > self.samples[-1].uptime_s:
            self.samples.append(Sample(state.uptime_s, state.requested_total))
        self._prune(keep_s)
        self.state = state
        self.last_ok_at = now
        self.last_error = None
        self.failed_last_poll = False

    def fail(self, error: str) -> None:
        self.last_error = error
        self.failed_last_poll = True

    def _prune(self, keep_s: float) -> None:
        # Keep one sample at or before the window's start, so the average spans it all.
        newest = self.samples[-1].uptime_s
        while len(self.samples) > 2 and newest - self.samples[1].uptime_s >= keep_s:
            self.samples.popleft()

    @property
    def has_rate(self) -> bool:
        """Two samples of this boot: what the pod did between them is a rate."""
        return len(self.samples) >= 2

    def fast_rate(self) -> float | None:
        """Tokens/s over the last polls (at least `FAST_SPAN_S`); None when
        seen only once in this boot."""
        return fast_rate(self.samples)

    def window_rate(self, window_s: float) -> float | None:
        """Tokens/s over the last `window_s` seconds of pod time (None: no rate)."""
        return window_rate(self.samples, window_s)

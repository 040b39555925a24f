"""What one pod said, one boot at a time: the samples the scaler keeps of each pod.

The only mutable state of the demand maths: the poller records each answer here, and
`aggregation` reads it. A restart (new `boot_id`, or a counter going back) starts a
new series, so counters are never differenced across boots.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace

from scaler.aggregation import Sample, fast_rate, window_rate
from scaler.bucket_state import BucketState


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

    def observe(self, state: BucketState, now: float, keep_s: float) -> None:
        previous = self.state
        new_boot = previous is not None and previous.boot_id != state.boot_id
        went_back = previous is not None and (
            state.uptime_s < previous.uptime_s or state.requested_total < previous.requested_total
        )
        if new_boot or went_back:
            # A restart starts a new series: never difference counters across boots.
            self.samples.clear()
            self.restarts += 1
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
        """Tokens/s over the last polls (at least `aggregation.FAST_SPAN_S`); None when
        seen only once in this boot."""
        return fast_rate(self.samples)

    def window_rate(self, window_s: float) -> float | None:
        """Tokens/s over the last `window_s` seconds of pod time (None: no rate)."""
        return window_rate(self.samples, window_s)

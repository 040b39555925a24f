"""The token bucket that guards one pod: pure Python, time from an injected clock.

Tokens refill lazily: nothing runs between calls, each call first adds
`elapsed * refill_per_s` (never past capacity), then takes what it asks for.
One request costs one token.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
"""Seconds from a monotonic source, e.g. `time.monotonic`."""


@dataclass(frozen=True, slots=True)
class BucketState:
    """One consistent view of a bucket, taken at `now_s` on its clock."""

    now_s: float
    capacity: float
    refill_per_s: float
    tokens: float
    granted_total: int
    denied_total: int


class TokenBucket:
    """A token bucket of `capacity` tokens refilled at `refill_per_s`; it starts full."""

    __slots__ = (
        "_clock",
        "_tokens",
        "_updated_s",
        "capacity",
        "denied_total",
        "granted_total",
        "refill_per_s",
    )

    def __init__(self, capacity: float, refill_per_s: float, clock: Clock) -> None:
        if not (math.isfinite(capacity) and capacity >= 1.0):
            raise ValueError(f"capacity must be a finite number >= 1, got {capacity!r}")
        if not (math.isfinite(refill_per_s) and refill_per_s > 0.0):
            raise ValueError(f"refill_per_s must be a finite number > 0, got {refill_per_s!r}")
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self._clock = clock
        self._tokens = self.capacity
        self._updated_s = clock()
        self.granted_total = 0
        self.denied_total = 0

    def try_acquire(self) -> bool:
        """Take one token if there is one; count the token as granted or denied."""
        # Inlined refill: this runs once per request and is measured in bench/bucket_cost.py.
        now = self._clock()
        tokens = self._tokens
        elapsed = now - self._updated_s
        if elapsed > 0.0:
            tokens += elapsed * self.refill_per_s
            if tokens > self.capacity:
                tokens = self.capacity
            self._updated_s = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            self.granted_total += 1
            return True
        self._tokens = tokens
        self.denied_total += 1
        return False

    @property
    def tokens_left(self) -> float:
        """Tokens as of the last call, without a new refill: what the last caller left."""
        return self._tokens

    def available(self) -> float:
        """Tokens available now (refills, takes nothing)."""
        self._refill()
        return self._tokens

    def retry_after_s(self) -> float:
        """Seconds until one whole token is due; 0 when one is available now."""
        missing = 1.0 - self.available()
        return missing / self.refill_per_s if missing > 0.0 else 0.0

    def state(self) -> BucketState:
        """A consistent snapshot, refilled to now."""
        self._refill()
        return BucketState(
            now_s=self._updated_s,
            capacity=self.capacity,
            refill_per_s=self.refill_per_s,
            tokens=self._tokens,
            granted_total=self.granted_total,
            denied_total=self.denied_total,
        )

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated_s
        if elapsed > 0.0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_s)
            self._updated_s = now

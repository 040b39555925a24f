"""`RequestStats`: the pod's answered requests as plain counts, by status and duration.

Plain ints and floats, updated on the event loop that also runs the scrape: no locks,
and no label lookup per request. `api/exposition.py` turns them into Prometheus
families at scrape time; this module imports nothing from prometheus_client.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator

# Requests take well under a millisecond when served, so the default buckets (from 5 ms)
# would put nearly everything into the first one.
DURATION_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PRESET_CODES = (200, 429)
"""Series created at start-up, so that `rate()` has a zero baseline before the first 429."""


class RequestStats:
    """`requests_total{code}` and the `request_duration_seconds` histogram, as counts."""

    def __init__(self, bounds_s: tuple[float, ...] = DURATION_BUCKETS_S) -> None:
        self._bounds_s = bounds_s
        self._bucket_counts = [0] * (len(bounds_s) + 1)  # the last one is +Inf
        self.sum_s = 0.0
        self._count_by_status = [0] * 600  # indexed by status code: HTTP has 100 to 599
        self._count_by_odd_status: dict[int, int] = {}  # any other number an app may send

    def observe(self, status: int, duration_s: float) -> None:
        """Count one answered request and its duration; never raises, whatever the status."""
        if 0 <= status < 600:
            self._count_by_status[status] += 1
        else:
            self._count_by_odd_status[status] = self._count_by_odd_status.get(status, 0) + 1
        self._bucket_counts[bisect_left(self._bounds_s, duration_s)] += 1
        self.sum_s += duration_s

    def counts_by_status(self) -> Iterator[tuple[int, int]]:
        """(status, answers) of every status seen, and of `PRESET_CODES` at zero."""
        for code, count in enumerate(self._count_by_status):
            if count or code in PRESET_CODES:
                yield code, count
        yield from sorted(self._count_by_odd_status.items())

    def cumulative_buckets(self) -> list[tuple[str, float]]:
        buckets = []
        total = 0
        for bound, count in zip((*self._bounds_s, math.inf), self._bucket_counts, strict=True):
            total += count
            buckets.append(("+Inf" if bound == math.inf else repr(bound), float(total)))
        return buckets

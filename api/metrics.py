"""Prometheus metrics of one pod, in a registry of its own.

Everything is read at scrape time by collectors: the bucket gauges show the fill right
now, not at the last request, and the request counters are plain ints and floats kept
by `RequestStats`. Both servers run on one event loop and the scrape runs on it too, so
the loop orders every update and read: no locks, and no label lookup per request
(prometheus_client's own `Counter` and `Histogram` take a lock per update: 2.8 us per
request against 0.4 us here, see docs/BENCHMARKS.md).

prometheus_client is imported at the first scrape (api/exposition.py), not at start-up:
with what it imports (http.server, wsgiref, urllib) it costs about a tenth of the time
from process start to ready (bench/api_startup.py).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING

from api.bucket import TokenBucket

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

PREFIX = "openclaw_rating_api"
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


class RatingMetrics:
    """Everything `/metrics` shows, registered in `registry` when first asked for."""

    def __init__(self, bucket: TokenBucket, registry: CollectorRegistry | None = None) -> None:
        self.bucket = bucket
        self.requests = RequestStats()
        self.observe = self.requests.observe
        self._given_registry = registry
        self._registry: CollectorRegistry | None = None

    @property
    def registry(self) -> CollectorRegistry:
        if self._registry is None:
            from api import exposition  # at the first scrape: see the docstring

            self._registry = exposition.registry_for(self, self._given_registry)
        return self._registry

    def expose(self, accept: str) -> tuple[bytes, str]:
        """The scrape's body and Content-Type, in the format `accept` asks for."""
        from api import exposition

        return exposition.encode(self.registry, accept)

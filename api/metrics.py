"""Prometheus metrics of one pod, in a registry of its own.

Everything is read at scrape time by collectors: the bucket gauges show the fill right
now, not at the last request, and the request counters are plain ints and floats kept
by `RequestStats`. Both servers run on one event loop and the scrape runs on it too, so
the loop orders every update and read: no locks, and no label lookup per request
(prometheus_client's own `Counter` and `Histogram` take a lock per update: 2.8 us per
request against 0.4 us here, see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from api.bucket import TokenBucket

PREFIX = "openclaw_rating_api"
# Requests take well under a millisecond when served, so the default buckets (from 5 ms)
# would put nearly everything into the first one.
DURATION_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PRESET_CODES = (200, 429)
"""Series created at start-up, so that `rate()` has a zero baseline before the first 429."""


class RequestStats(Collector):
    """`requests_total{code}` and the `request_duration_seconds` histogram."""

    def __init__(self, bounds_s: tuple[float, ...] = DURATION_BUCKETS_S) -> None:
        self._bounds_s = bounds_s
        self._bucket_counts = [0] * (len(bounds_s) + 1)  # the last one is +Inf
        self._sum_s = 0.0
        self._count_by_status = [0] * 600  # indexed by status code: HTTP has 100 to 599
        self._count_by_odd_status: dict[int, int] = {}  # any other number an app may send

    def observe(self, status: int, duration_s: float) -> None:
        """Count one answered request and its duration; never raises, whatever the status."""
        if 0 <= status < 600:
            self._count_by_status[status] += 1
        else:
            self._count_by_odd_status[status] = self._count_by_odd_status.get(status, 0) + 1
        self._bucket_counts[bisect_left(self._bounds_s, duration_s)] += 1
        self._sum_s += duration_s

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{PREFIX}_requests",
            "Answered requests on the public port (probes excluded), by status code.",
            labels=["code"],
        )
        for code, count in enumerate(self._count_by_status):
            if count or code in PRESET_CODES:
                requests.add_metric([str(code)], count)
        for code, count in sorted(self._count_by_odd_status.items()):
            requests.add_metric([str(code)], count)
        yield requests
        yield HistogramMetricFamily(
            f"{PREFIX}_request_duration_seconds",
            "Time from request start to the end of the response, seconds.",
            buckets=self._cumulative_buckets(),
            sum_value=self._sum_s,
        )

    def _cumulative_buckets(self) -> list[tuple[str, float]]:
        buckets = []
        total = 0
        for bound, count in zip((*self._bounds_s, math.inf), self._bucket_counts, strict=True):
            total += count
            buckets.append(("+Inf" if bound == math.inf else repr(bound), float(total)))
        return buckets


class BucketCollector(Collector):
    """The bucket's state at scrape time: plain reads of floats and ints, nothing to fail."""

    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket

    def collect(self) -> Iterator[Metric]:
        state = self._bucket.state()
        yield GaugeMetricFamily(
            f"{PREFIX}_token_bucket_fill", "Tokens available in the bucket now.", value=state.tokens
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_token_bucket_capacity",
            "Burst size of the bucket, tokens.",
            value=state.capacity,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_token_bucket_refill_rate",
            "Refill rate of the bucket, tokens per second.",
            value=state.refill_per_s,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_token_bucket_granted",
            "Tokens granted since start-up (requests let through).",
            value=state.granted_total,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_token_bucket_denied",
            "Tokens denied since start-up (requests answered 429).",
            value=state.denied_total,
        )


class RatingMetrics:
    """Everything `/metrics` shows, registered in `registry`."""

    def __init__(self, bucket: TokenBucket, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = RequestStats()
        self.observe = self.requests.observe
        self.registry.register(self.requests)
        self.registry.register(BucketCollector(bucket))
        ProcessCollector(registry=self.registry)

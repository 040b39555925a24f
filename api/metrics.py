"""Prometheus metrics of one pod, in a registry of its own.

The bucket gauges are read at scrape time by a collector, so `..._token_bucket_fill`
is the fill right now, not at the last request. Request counters are bound per status
code ahead of time: the request path does no label lookup.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.bucket import TokenBucket

PREFIX = "openclaw_rating_api"
# Requests take well under a millisecond when served, so the default buckets (from 5 ms)
# would put nearly everything into the first one.
DURATION_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PRESET_CODES = (200, 429)
"""Series created at start-up, so that `rate()` has a zero baseline before the first 429."""


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
        self._requests = Counter(
            f"{PREFIX}_requests",
            "Answered requests on the public port (probes excluded), by status code.",
            ["code"],
            registry=self.registry,
        )
        self._duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from request start to the end of the response, seconds.",
            buckets=DURATION_BUCKETS_S,
            registry=self.registry,
        )
        self._observe_duration = self._duration.observe
        self._count_by_code = {
            code: self._requests.labels(code=str(code)).inc for code in PRESET_CODES
        }
        self.registry.register(BucketCollector(bucket))
        ProcessCollector(registry=self.registry)

    def observe(self, status: int, duration_s: float) -> None:
        """Count one answered request and its duration."""
        count = self._count_by_code.get(status)
        if count is None:
            # Status codes are a small fixed set, so this cache stays small.
            count = self._count_by_code[status] = self._requests.labels(code=str(status)).inc
        count()
        self._observe_duration(duration_s)

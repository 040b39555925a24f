"""What `/metrics` shows: the pod's request counts and bucket as Prometheus families.

Imported at the first scrape, by api/metrics.py, so that prometheus_client stays out of
the start-up. It imports nothing of api/metrics.py: it is given what to show.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from api.bucket import TokenBucket
from api.request_stats import RequestStats

PREFIX = "openclaw_rating_api"


class RequestsCollector(Collector):
    """`requests_total{code}` and the `request_duration_seconds` histogram."""

    def __init__(self, requests: RequestStats) -> None:
        self._requests = requests

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{PREFIX}_requests",
            "Answered requests on the public port (probes excluded), by status code.",
            labels=["code"],
        )
        for code, count in self._requests.counts_by_status():
            requests.add_metric([str(code)], count)
        yield requests
        yield HistogramMetricFamily(
            f"{PREFIX}_request_duration_seconds",
            "Time from request start to the end of the response, seconds.",
            buckets=self._requests.cumulative_buckets(),
            sum_value=self._requests.sum_s,
        )


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


def registry_for(
    requests: RequestStats, bucket: TokenBucket, registry: CollectorRegistry | None
) -> CollectorRegistry:
    """`registry` (a new one if None) with every collector of the pod registered."""
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(RequestsCollector(requests))
    registry.register(BucketCollector(bucket))
    ProcessCollector(registry=registry)
    return registry


def encode(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The scrape's body and Content-Type, in the format `accept` asks for."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type

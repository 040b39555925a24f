"""Prometheus metrics of one pod, in a registry of its own.

Everything is read at scrape time by collectors: the bucket gauges show the fill right
now, not at the last request, and the request counters are plain ints and floats kept
by `RequestStats` (api/request_stats.py). Both servers run on one event loop and the
scrape runs on it too, so the loop orders every update and read: no locks, and no label
lookup per request (prometheus_client's own `Counter` and `Histogram` take a lock per
update: 2.8 us per request against 0.4 us here, see docs/BENCHMARKS.md).

prometheus_client is imported at the first scrape (api/exposition.py), not at start-up:
with what it imports (http.server, wsgiref, urllib) it costs about a tenth of the time
from process start to ready (bench/api_startup.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from api.bucket import TokenBucket
from api.request_stats import RequestStats

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


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

            self._registry = exposition.registry_for(
                self.requests, self.bucket, self._given_registry
            )
        return self._registry

    def expose(self, accept: str) -> tuple[bytes, str]:
        """The scrape's body and Content-Type, in the format `accept` asks for."""
        from api import exposition

        return exposition.encode(self.registry, accept)

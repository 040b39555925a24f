"""The activator's Prometheus metrics, on a registry of its own.

Every request the public port answers is one of: forwarded at once (a pod was ready:
`forwarded_total{held="false"}`, which stays 0 while the public Service routes
around the activator), forwarded after a hold (`held="true"`), timed out, refused
because the queue was full, or failed at the pod.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from activator.hold import Holds

PREFIX = "openclaw_rating_activator_"
HOLD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
POD_ERROR_KINDS = ("unreachable", "failed", "timeout")


class ActivatorMetrics:
    def __init__(self, registry: CollectorRegistry, holds: Holds) -> None:
        self.registry = registry
        held_now = Gauge(
            PREFIX + "held_requests",
            "Requests held now, waiting for a ready pod.",
            registry=registry,
        )
        held_now.set_function(lambda: holds.held)
        pods = Gauge(PREFIX + "pods_ready", "Ready rating pods known now.", registry=registry)
        pods.set_function(lambda: len(holds.pods))
        self.held = Counter(PREFIX + "held", "Requests held for a pod.", registry=registry)
        self.forwarded = Counter(
            PREFIX + "forwarded",
            "Requests forwarded to a pod; held=false: a pod was ready when they came.",
            ["held"],
            registry=registry,
        )
        self.timed_out = Counter(
            PREFIX + "timed_out", "Held requests answered 503: no pod in time.", registry=registry
        )
        self.refused_full = Counter(
            PREFIX + "refused_full", "Requests answered 503 at once: the queue was full.",
            registry=registry,
        )  # fmt: skip
        self.pod_errors = Counter(
            PREFIX + "pod_errors",
            f"Forwards a pod did not answer, by kind ({', '.join(POD_ERROR_KINDS)}).",
            ["kind"],
            registry=registry,
        )
        self.hold_seconds = Histogram(
            PREFIX + "hold_seconds",
            "Seconds a held request waited for a pod (forwarded or timed out).",
            buckets=HOLD_BUCKETS,
            registry=registry,
        )
        for held in ("true", "false"):
            self.forwarded.labels(held)
        for kind in POD_ERROR_KINDS:
            self.pod_errors.labels(kind)

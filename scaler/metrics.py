"""The scaler's own Prometheus metrics, on a registry of its own.

Per-target and per-ScaledObject gauges are computed at scrape time from the
pollers' memory by a collector that never raises.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scaler.fetch import POD_ERROR_REASONS
from scaler.keys import TargetKey
from scaler.poller import TargetPoller
from scaler.scaling import desired_replicas, metric_value, target_per_pod
from scaler.targets import Targets

log = logging.getLogger("scaler.metrics")
PREFIX = "openclaw_rating_scaler_"
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
RPC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)
RPC_METHODS = ("GetMetricSpec", "GetMetrics", "IsActive", "StreamIsActive", "StreamMetricSpec")


class ScalerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.poll_duration = Histogram(
            PREFIX + "poll_duration_seconds",
            "Seconds one poll cycle of a target took (discovery plus all pods in parallel).",
            ["target"],
            buckets=POLL_BUCKETS,
            registry=registry,
        )
        self.rpc = Counter(
            PREFIX + "rpc",
            "ExternalScaler calls answered, by method and gRPC status code.",
            ["method", "code"],
            registry=registry,
        )
        self.rpc_duration = Histogram(
            PREFIX + "rpc_duration_seconds",
            "Seconds to answer one ExternalScaler call.",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=registry,
        )
        for method in RPC_METHODS:
            self.rpc_duration.labels(method)
            for code in ("OK", "UNAVAILABLE", "INVALID_ARGUMENT"):
                self.rpc.labels(method, code)

    def on_cycle(self, poller: TargetPoller, duration_s: float) -> None:
        self.poll_duration.labels(poller.target.label).observe(duration_s)

    def forget(self, target: TargetKey) -> None:
        with contextlib.suppress(KeyError):  # a target forgotten before its first cycle
            self.poll_duration.remove(target.label)


class TargetsCollector(Collector):
    """Per-target and per-ScaledObject series, read from the pollers at scrape time."""

    def __init__(self, targets: Targets) -> None:
        self._targets = targets

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception:  # a scrape must never fail because of one odd target
            log.exception("collecting target gauges failed")

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def _families(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        per_target = ["target"]
        per_object = ["namespace", "scaled_object", "metric"]
        return [
            CounterMetricFamily(
                PREFIX + "pod_errors",
                f"Failed polls of single pods, by reason ({', '.join(POD_ERROR_REASONS)}).",
                labels=["target", "reason"],
            ),
            GaugeMetricFamily(PREFIX + "targets", "Targets being polled."),
            GaugeMetricFamily(PREFIX + "pods", "Pods discovered per target.", labels=per_target),
            GaugeMetricFamily(
                PREFIX + "pods_failed", "Pods whose last poll failed.", labels=per_target
            ),
            GaugeMetricFamily(
                PREFIX + "data_age_seconds",
                "Seconds since any pod of the target last answered.",
                labels=per_target,
            ),
            GaugeMetricFamily(
                PREFIX + "extrapolated",
                "1 when the target's total is scaled up from fewer pods.",
                labels=per_target,
            ),
            GaugeMetricFamily(
                PREFIX + "metric_value",
                "The value GetMetrics reports for a ScaledObject.",
                labels=per_object,
            ),
            GaugeMetricFamily(
                PREFIX + "target_per_pod",
                "The per-pod target GetMetricSpec reports.",
                labels=per_object,
            ),
            GaugeMetricFamily(
                PREFIX + "desired_replicas",
                "ceil(metric_value / target_per_pod): what the HPA will ask for.",
                labels=per_object,
            ),
        ]

    def _collect(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        families = self._families()
        errors, targets, pods, failed, age, extrapolated, value, target, desired = families
        targets.add_metric([], len(self._targets.pollers))
        for poller in list(self._targets.pollers.values()):
            snap = poller.snapshot()
            label = [snap.target.label]
            for reason in POD_ERROR_REASONS:  # every reason, so that rate() has a baseline
                errors.add_metric([*label, reason], snap.pod_errors.get(reason, 0))
            pods.add_metric(label, snap.aggregate.pods_total)
            failed.add_metric(label, snap.aggregate.pods_failed)
            age.add_metric(label, snap.data_age_s)
            extrapolated.add_metric(label, float(snap.aggregate.extrapolated))
        for so_key, use in list(self._targets.scaled_objects.items()):
            user_poller = self._targets.pollers.get(use.trigger.target)
            if user_poller is None:
                continue
            agg = user_poller.aggregate(use.trigger.window_s)
            labels = [so_key.namespace, so_key.name, so_key.metric]
            current, per_pod = metric_value(use.trigger, agg), target_per_pod(use.trigger, agg)
            value.add_metric(labels, current)
            if per_pod is not None:  # unknown until a pod answers: no series rather than a guess
                target.add_metric(labels, per_pod)
                desired.add_metric(labels, desired_replicas(current, per_pod))
        return families

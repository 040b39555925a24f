"""The scaler's own Prometheus metrics, on a registry of its own.

Per-target and per-ScaledObject gauges are read at scrape time by a collector that
never raises: a target's from its view's snapshot, a ScaledObject's from the same
`Answer` its RPCs get (`TargetView.answer`), never computed a second way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scaler.pod_errors import POD_ERROR_REASONS
from scaler.readmodel import TargetView
from scaler.rpc_metrics import RpcMetrics
from scaler.target_key import TargetKey
from scaler.targets import ScaledObjectKey, ScaledObjectUse, Targets

log = logging.getLogger("scaler.metrics")
PREFIX = "openclaw_rating_scaler_"
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
RPC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)
T = TypeVar("T")
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
            for code in ("OK", "UNAVAILABLE", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"):
                self.rpc.labels(method, code)
        self.rpcs = RpcMetrics(self.rpc, self.rpc_duration)

    def on_cycle(self, target: TargetKey, duration_s: float) -> None:
        self.poll_duration.labels(target.label).observe(duration_s)

    def forget(self, target: TargetKey) -> None:
        with contextlib.suppress(KeyError):  # a target forgotten before its first cycle
            self.poll_duration.remove(target.label)


Family = GaugeMetricFamily | CounterMetricFamily
Row = tuple[Family, list[str], float]


@dataclass(frozen=True, slots=True)
class _Families:
    pod_errors: CounterMetricFamily
    skipped: CounterMetricFamily
    targets: GaugeMetricFamily
    pods: GaugeMetricFamily
    pods_failed: GaugeMetricFamily
    data_age: GaugeMetricFamily
    extrapolated: GaugeMetricFamily
    held: GaugeMetricFamily
    metric_value: GaugeMetricFamily
    target_per_pod: GaugeMetricFamily
    desired_replicas: GaugeMetricFamily
    forecast: GaugeMetricFamily
    forecast_period: GaugeMetricFamily
    forecast_confidence: GaugeMetricFamily

    def all(self) -> list[Family]:
        return [getattr(self, field.name) for field in fields(self)]


class TargetsCollector(Collector):
    """Per-target and per-ScaledObject series, read from the views at scrape time.

    Each target and each ScaledObject is computed on its own: one that fails is left
    out of that scrape, logged and counted in `collect_skipped_total`, and the others
    are exported as usual.
    """

    def __init__(self, targets: Targets) -> None:
        self._targets = targets
        self._skipped = 0

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception:  # a scrape must never fail, whatever goes wrong
            log.exception("collecting target gauges failed")

    def describe(self) -> Iterator[Metric]:
        return iter(_families().all())

    def _collect(self) -> list[Family]:
        families = _families()
        families.targets.add_metric([], len(self._targets.views))
        for view in list(self._targets.views.values()):
            self._add(families, f"target {view.target.label}", _target_rows, view)
        for so_key, use in list(self._targets.scaled_objects.items()):
            used = self._targets.views.get(use.trigger.target)
            if used is not None:
                name = f"ScaledObject {so_key.namespace}/{so_key.name}"
                self._add(families, name, _scaled_object_rows, (so_key, use, used))
        families.skipped.add_metric([], self._skipped)
        return families.all()

    def _add(
        self, families: _Families, what: str, rows: Callable[[_Families, T], list[Row]], item: T
    ) -> None:
        """Add one target's or ScaledObject's series, all of them or none."""
        try:
            computed = rows(families, item)
        except Exception as exc:
            self._skipped += 1
            log.warning("/metrics: %s left out of this scrape: %r", what, exc)
            return
        for family, labels, value in computed:
            family.add_metric(labels, value)


def _target_rows(families: _Families, view: TargetView) -> list[Row]:
    snap = view.snapshot(with_pods=False)
    label = [snap.target.label]
    rows: list[Row] = [  # every reason, so that rate() has a baseline
        (families.pod_errors, [*label, reason], snap.pod_errors.get(reason, 0))
        for reason in POD_ERROR_REASONS
    ]
    agg = snap.aggregate
    rows += [
        (families.pods, label, agg.pods_total),
        (families.pods_failed, label, agg.pods_failed),
        (families.data_age, label, snap.data_age_s),
        (families.extrapolated, label, float(agg.extrapolated)),
        (families.held, label, agg.held_requests),
    ]
    pattern = snap.forecast
    if pattern is not None and pattern.period_s is not None and pattern.confidence is not None:
        rows.append((families.forecast_period, label, pattern.period_s))
        rows.append((families.forecast_confidence, label, pattern.confidence))
    return rows


def _scaled_object_rows(
    families: _Families, item: tuple[ScaledObjectKey, ScaledObjectUse, TargetView]
) -> list[Row]:
    so_key, use, view = item
    found = view.answer(use.trigger)
    labels = [so_key.namespace, so_key.name, so_key.metric]
    rows: list[Row] = [(families.metric_value, labels, found.metric_value)]
    desired = found.desired_replicas
    if found.target_per_pod is not None and desired is not None:  # no guess: no series
        rows.append((families.target_per_pod, labels, found.target_per_pod))
        rows.append((families.desired_replicas, labels, desired))
    if found.forecast_per_s is not None:  # no pattern: no series
        rows.append((families.forecast, labels, found.forecast_per_s))
    return rows


def _families() -> _Families:
    per_target = ["target"]
    per_object = ["namespace", "scaled_object", "metric"]
    return _Families(
        pod_errors=CounterMetricFamily(
            PREFIX + "pod_errors",
            f"Failed polls of single pods, by reason ({', '.join(POD_ERROR_REASONS)}).",
            labels=["target", "reason"],
        ),
        skipped=CounterMetricFamily(
            PREFIX + "collect_skipped",
            "Targets or ScaledObjects left out of a scrape because their series failed (logged).",
        ),
        targets=GaugeMetricFamily(PREFIX + "targets", "Targets being polled."),
        pods=GaugeMetricFamily(PREFIX + "pods", "Pods discovered per target.", labels=per_target),
        pods_failed=GaugeMetricFamily(
            PREFIX + "pods_failed", "Pods whose last poll failed.", labels=per_target
        ),
        data_age=GaugeMetricFamily(
            PREFIX + "data_age_seconds",
            "Seconds since any pod of the target last answered.",
            labels=per_target,
        ),
        extrapolated=GaugeMetricFamily(
            PREFIX + "extrapolated",
            "1 when the target's total is scaled up from fewer pods.",
            labels=per_target,
        ),
        held=GaugeMetricFamily(
            PREFIX + "held_requests",
            "Requests the target's activators hold for a ready pod (0 without activators).",
            labels=per_target,
        ),
        metric_value=GaugeMetricFamily(
            PREFIX + "metric_value",
            "The value GetMetrics reports for a ScaledObject.",
            labels=per_object,
        ),
        target_per_pod=GaugeMetricFamily(
            PREFIX + "target_per_pod",
            "The per-pod target GetMetricSpec reports.",
            labels=per_object,
        ),
        desired_replicas=GaugeMetricFamily(
            PREFIX + "desired_replicas",
            "ceil(metric_value / target_per_pod): what the HPA will ask for.",
            labels=per_object,
        ),
        forecast=GaugeMetricFamily(
            PREFIX + "forecast_per_s",
            "forecast: recurring: the most demand expected over the trigger's forecastLead; "
            "metric_value is the larger of it and the demand now.",
            labels=per_object,
        ),
        forecast_period=GaugeMetricFamily(
            PREFIX + "forecast_period_seconds",
            "The period found in a forecasting target's demand.",
            labels=per_target,
        ),
        forecast_confidence=GaugeMetricFamily(
            PREFIX + "forecast_confidence",
            "How well the demand repeats at that period, 0..1 (forecasts from 0.5).",
            labels=per_target,
        ),
    )


class WorkersCollector(Collector):
    """The poll worker processes: how many run, how often one was restarted."""

    def __init__(self, stats: Callable[[], tuple[int, int]]) -> None:
        self._stats = stats  # (running, restarts)

    def collect(self) -> Iterator[Metric]:
        running, restarts = self._stats()
        workers = GaugeMetricFamily(PREFIX + "workers", "Poll worker processes running.")
        workers.add_metric([], running)
        restarted = CounterMetricFamily(
            PREFIX + "worker_restarts",
            "Poll worker processes restarted after they ended unasked (killed, crashed).",
        )
        restarted.add_metric([], restarts)
        yield workers
        yield restarted

    def describe(self) -> Iterator[Metric]:
        return self.collect()

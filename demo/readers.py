"""Read both paths as KEDA would, and what the pods really answered.

- `DirectPath`: the rating-scaler over gRPC, in KEDA's order on every poll:
  GetMetricSpec, GetMetrics (with the metric name the spec gave), IsActive.
- `PrometheusPath`: the Prometheus HTTP API with the queries a user of KEDA's
  Prometheus scaler writes.
- `PodCounters`: the pods' own `requests_total{code}`, the ground truth for the chart.

`Readers.sample` reads all three once and turns the answers into one `Sample`.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from prometheus_client.parser import text_string_to_metric_families

from demo.processes import Pod, Prometheus, Scaler
from demo.series import Sample, desired_replicas
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc

DEMAND_QUERY = "sum(rate(openclaw_rating_api_requests_total[1m]))"
FILL_QUERY = "sum(openclaw_rating_api_token_bucket_fill)"
CALL_TIMEOUT_S = 2.0
REQUESTS_METRIC = "openclaw_rating_api_requests"


@dataclass(frozen=True)
class DirectReading:
    target_per_pod: float
    demand_per_s: float
    active: bool


class DirectPath:
    """The scaler, asked about one ScaledObject whose trigger names the pods statically."""

    def __init__(
        self, scaler: Scaler, pods: Sequence[Pod], *, window_s: int, target_utilization: float
    ) -> None:
        metadata = {
            "scalerAddress": scaler.grpc_address,  # KEDA sends it along with the rest
            "endpoints": ",".join(pod.admin_address for pod in pods),
            "metric": "demand",
            "targetUtilization": f"{target_utilization:g}",
            "window": str(window_s),
        }
        self._ref = pb.ScaledObjectRef(name="rating-api", namespace="demo", scalerMetadata=metadata)
        self._channel = grpc.insecure_channel(scaler.grpc_address)
        self._stub = pb_grpc.ExternalScalerStub(self._channel)  # type: ignore[no-untyped-call]

    def read(self) -> DirectReading | None:
        """None while the scaler has no fresh data (it answers UNAVAILABLE then)."""
        try:
            spec = self._stub.GetMetricSpec(self._ref, timeout=CALL_TIMEOUT_S).metricSpecs[0]
            request = pb.GetMetricsRequest(scaledObjectRef=self._ref, metricName=spec.metricName)
            value = self._stub.GetMetrics(request, timeout=CALL_TIMEOUT_S).metricValues[0]
            active = self._stub.IsActive(self._ref, timeout=CALL_TIMEOUT_S).result
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return None
            raise
        return DirectReading(spec.targetSizeFloat, value.metricValueFloat, active)

    def close(self) -> None:
        self._channel.close()


@dataclass(frozen=True)
class PrometheusReading:
    demand_per_s: float | None
    fill_tokens: float | None


class PrometheusPath:
    """Instant queries against the Prometheus HTTP API."""

    def __init__(self, prometheus: Prometheus) -> None:
        self._url = f"{prometheus.url}/api/v1/query"

    def query(self, promql: str) -> float | None:
        """The single value of `promql` now; None when Prometheus has no answer yet."""
        url = f"{self._url}?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=CALL_TIMEOUT_S) as response:
                reply = json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return None
        result = reply.get("data", {}).get("result", [])
        if reply.get("status") != "success" or not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value

    def read(self) -> PrometheusReading:
        return PrometheusReading(self.query(DEMAND_QUERY), self.query(FILL_QUERY))


@dataclass(frozen=True)
class PodRates:
    answered_per_s: float
    denied_per_s: float  # the 429s among them


class PodCounters:
    """Answered and 429 requests per second across the pods, from their /metrics."""

    def __init__(self, pods: Sequence[Pod]) -> None:
        self._urls = [f"http://{pod.admin_address}/metrics" for pod in pods]
        self._last: tuple[float, float, float] | None = None  # (time, answered, denied)

    def totals(self) -> tuple[float, float] | None:
        answered = denied = 0.0
        for url in self._urls:
            try:
                with urllib.request.urlopen(url, timeout=CALL_TIMEOUT_S) as response:
                    text = response.read().decode()
            except (urllib.error.URLError, OSError):
                return None
            for family in text_string_to_metric_families(text):
                if family.name == REQUESTS_METRIC:
                    for sample in family.samples:
                        if sample.name.endswith("_total"):
                            answered += sample.value
                            denied += sample.value if sample.labels.get("code") == "429" else 0
        return answered, denied

    def read(self, now_s: float) -> PodRates | None:
        """Rates since the previous call; None on the first call or when a pod fails."""
        totals = self.totals()
        if totals is None:
            self._last = None
            return None
        last, self._last = self._last, (now_s, *totals)
        if last is None or now_s <= last[0]:
            return None
        elapsed_s = now_s - last[0]
        return PodRates((totals[0] - last[1]) / elapsed_s, (totals[1] - last[2]) / elapsed_s)


@dataclass(frozen=True)
class Readers:
    """Everything read once a tick; `prometheus` is None without a Prometheus."""

    direct: DirectPath
    prometheus: PrometheusPath | None
    pods: PodCounters

    def sample(self, t_s: float, phase: str, offered_per_s: float, target_per_pod: float) -> Sample:
        """Read everything once. The direct path's replicas use the target per pod that
        GetMetricSpec reports; Prometheus' use `target_per_pod`, the same number as a
        Prometheus trigger's threshold."""
        direct = self.direct.read()
        prometheus = self.prometheus.read() if self.prometheus else None
        rates = self.pods.read(t_s)
        direct_demand = direct.demand_per_s if direct else None
        direct_target = direct.target_per_pod if direct else None
        prometheus_demand = prometheus.demand_per_s if prometheus else None
        return Sample(
            t_s=t_s,
            phase=phase,
            offered_per_s=offered_per_s,
            answered_per_s=rates.answered_per_s if rates else None,
            denied_per_s=rates.denied_per_s if rates else None,
            direct_demand_per_s=direct_demand,
            direct_target_per_pod=direct_target,
            direct_active=direct.active if direct else None,
            direct_replicas=desired_replicas(direct_demand, direct_target),
            prometheus_demand_per_s=prometheus_demand,
            prometheus_fill_tokens=prometheus.fill_tokens if prometheus else None,
            prometheus_replicas=desired_replicas(prometheus_demand, target_per_pod),
        )

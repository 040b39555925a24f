"""KEDA's side of both paths: what the HPA reads at each sync, and activity every poll.

- `DirectTrigger`: an `external` trigger against the rating-scaler, over real gRPC
  (`harness.keda_client`). Each read is what KEDA v2.20's code does: `GetMetricSpec`,
  then `GetMetrics` with the spec's metric name, then `IsActive` (skipped when
  `GetMetrics` failed). The trigger's
  `endpoints` list the fleet's ready pods at the time of the call, as a discovery of
  ready endpoints would; the rest of the metadata is the ScaledObject's. Between reads
  the demo sends the new list at each change of the ready pods
  (`demo.orchestrate.follow_endpoints`), so the scaler polls a joining pod as soon as it
  is ready, as an `endpointSlices` watch lets it in a cluster.
- `PrometheusTrigger`: KEDA's `prometheus` trigger: an instant query through the
  Prometheus HTTP API at each read; an empty answer, NaN or an infinity counts as 0
  (`ignoreNullValues`, true by default); active above `activationThreshold` (0).
- `OfferedTrigger`: the floor: the load offered at that instant, as a `metrics-api`
  trigger on the load generator's own offered rate would read it, with no delay.
- `ForecastReader`: not KEDA's: the forecast the scaler shows in `/v1/targets` for one
  ScaledObject, for the chart.

A failed read returns None: the HPA then leaves the replica count as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import aiohttp

from harness.keda_client import CALL_TIMEOUT_S, KedaClient, Reading, scaled_object_ref
from scaler._proto import externalscaler_pb2 as pb

DEMAND_QUERY = "sum(rate(openclaw_rating_api_requests_total[1m]))"
# The ScaledObject's trigger metadata (manifests/base/autoscaling/scaledobject.yaml).
SCALED_OBJECT_METADATA = {
    "metric": "demand",
    "targetUtilization": "0.8",
    "activationDemand": "0",
    "window": "5",
}


class DirectTrigger:
    """The rating-scaler, asked as KEDA asks it about one ScaledObject."""

    def __init__(
        self,
        grpc_target: str,
        *,
        name: str = "rating-api",
        namespace: str = "demo",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self._address = grpc_target
        self._name, self._namespace = name, namespace
        self._metadata = dict(metadata or {})  # added to the ScaledObject's
        self._client = KedaClient.insecure(grpc_target)

    @property
    def name(self) -> str:
        return self._name

    def ref(self, endpoints: Sequence[str]) -> pb.ScaledObjectRef:
        metadata = {
            "scalerAddress": self._address,
            "endpoints": ",".join(endpoints),
            **SCALED_OBJECT_METADATA,
            **self._metadata,
        }
        return scaled_object_ref(self._name, self._namespace, metadata)

    async def target_per_pod(self, endpoints: Sequence[str]) -> float:
        """What KEDA writes into the HPA as the AverageValue target."""
        return await self._client.target_per_pod(self.ref(endpoints))

    async def read(self, endpoints: Sequence[str]) -> Reading:
        return await self._client.read(self.ref(endpoints))

    async def close(self) -> None:
        await self._client.close()


class PrometheusTrigger:
    """KEDA's Prometheus scaler on one query."""

    def __init__(
        self, url: str, query: str = DEMAND_QUERY, activation_threshold: float = 0.0
    ) -> None:
        self._url = f"{url}/api/v1/query"
        self._query = query
        self._activation = activation_threshold
        self._session: aiohttp.ClientSession | None = None

    async def read(self) -> Reading:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
            )
        try:
            async with self._session.get(self._url, params={"query": self._query}) as response:
                reply = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return Reading(None, None, f"query failed: {exc!r}")
        if reply.get("status") != "success":
            return Reading(None, None, f"query failed: {reply.get('error')}")
        value = prometheus_value(reply.get("data", {}).get("result", []))
        return Reading(value, value > self._activation)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def prometheus_value(result: list[dict[str, object]]) -> float:
    """The single sample of an instant vector; 0 for none, NaN or an infinity."""
    if not result:
        return 0.0
    sample = result[0].get("value")
    if not isinstance(sample, list) or len(sample) < 2:
        return 0.0
    value = float(sample[1])
    return value if math.isfinite(value) else 0.0


class ForecastReader:
    """The forecast the scaler reports for one ScaledObject (`/v1/targets`), or None."""

    def __init__(self, http_url: str, name: str) -> None:
        self._url = f"{http_url}/v1/targets"
        self._name = name
        self._session: aiohttp.ClientSession | None = None

    async def read(self) -> float | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
            )
        try:
            async with self._session.get(self._url) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return forecast_of(body, self._name)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def forecast_of(body: dict[str, object], name: str) -> float | None:
    """The `forecast_per_s` of ScaledObject `name` in a `/v1/targets` answer."""
    targets = body.get("targets")
    for target in targets if isinstance(targets, list) else []:
        for user in target.get("scaled_objects", []):
            value = user.get("forecast_per_s")
            if user.get("name") == name and isinstance(value, int | float):
                return float(value)
    return None


class OfferedTrigger:
    """The load offered right now, requests/s: the metric no measurement can beat."""

    def __init__(self, offered_per_s: Callable[[], float]) -> None:
        self._offered_per_s = offered_per_s

    async def read(self) -> Reading:
        value = float(self._offered_per_s())
        return Reading(value, value > 0)

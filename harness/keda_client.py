"""KEDA's side of an `external` trigger: the calls KEDA v2.20 makes to an external scaler.

The one gRPC client of `externalscaler.ExternalScaler` for the demo, e2e, the
benchmarks and the soak. KEDA names the ScaledObject in every call with a
`ScaledObjectRef` whose `scalerMetadata` is the trigger's metadata
(`scaled_object_ref`). For each HPA query it asks `GetMetricSpec`, then `GetMetrics`
with the spec's metric name, then `IsActive` (`KedaClient.read`); `external-push`
keeps a `StreamIsActive` open. KEDA reads a metric value as its float when that is
above 0, else its integer (`keda_value`), and sums the values of one answer.

`KedaClient` is async (grpc.aio), on a channel it opens (`KedaClient.insecure`) or one
it is given; `read_metric_sync` is the same query from a thread without an event loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc

CALL_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Reading:
    """One HPA query: the value (None: the read failed) and whether the trigger is active
    (None: IsActive failed or was not asked), with what went wrong."""

    value: float | None
    active: bool | None
    error: str | None = None


def scaled_object_ref(name: str, namespace: str, metadata: Mapping[str, str]) -> pb.ScaledObjectRef:
    """The ScaledObjectRef KEDA sends: the ScaledObject's name and the trigger's metadata."""
    return pb.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata=dict(metadata))


def metrics_request(ref: pb.ScaledObjectRef, metric_name: str) -> pb.GetMetricsRequest:
    return pb.GetMetricsRequest(scaledObjectRef=ref, metricName=metric_name)


def keda_value(as_float: float, as_int: int) -> float:
    """KEDA uses the float when it is > 0, else the integer; to 3 decimals; NaN,
    infinities and negatives count as 0."""
    value = as_float if as_float > 0 else float(as_int)
    return 0.0 if not math.isfinite(value) or value < 0 else round(value, 3)


def metrics_value(reply: pb.GetMetricsResponse) -> float:
    """What KEDA reads from one GetMetrics answer: the sum of its values."""
    return sum(keda_value(v.metricValueFloat, v.metricValue) for v in reply.metricValues)


def spec_target(spec: pb.MetricSpec) -> float:
    """The AverageValue target KEDA writes into the HPA from one metric spec."""
    return spec.targetSizeFloat if spec.targetSizeFloat > 0 else float(spec.targetSize)


def first_spec(reply: pb.GetMetricSpecResponse) -> pb.MetricSpec:
    """The one metric spec a trigger of this scaler has."""
    if not reply.metricSpecs:
        raise ValueError("GetMetricSpec answered no metric spec")
    return reply.metricSpecs[0]


def _stub(channel: grpc.Channel | grpc.aio.Channel) -> Any:
    return pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]


class KedaClient:
    """KEDA's calls over one grpc.aio channel; `timeout_s` bounds each call."""

    def __init__(self, channel: grpc.aio.Channel, *, owned: bool = False) -> None:
        self.channel = channel
        self._stub = _stub(channel)
        self._owned = owned

    @classmethod
    def insecure(cls, target: str) -> KedaClient:
        """A client on a plaintext channel of its own to `target` (`host:port`)."""
        return cls(grpc.aio.insecure_channel(target), owned=True)

    def get_metric_spec(
        self, ref: pb.ScaledObjectRef, *, timeout_s: float = CALL_TIMEOUT_S
    ) -> grpc.aio.UnaryUnaryCall[pb.ScaledObjectRef, pb.GetMetricSpecResponse]:
        """The call itself, to await (no coroutine of its own: benchmarks loop on these)."""
        call: grpc.aio.UnaryUnaryCall[pb.ScaledObjectRef, pb.GetMetricSpecResponse]
        call = self._stub.GetMetricSpec(ref, timeout=timeout_s)
        return call

    def get_metrics(
        self, request: pb.GetMetricsRequest, *, timeout_s: float = CALL_TIMEOUT_S
    ) -> grpc.aio.UnaryUnaryCall[pb.GetMetricsRequest, pb.GetMetricsResponse]:
        """GetMetrics for a request built once (`metrics_request`), as a caller in a loop
        sends it again and again; the call, to await."""
        call: grpc.aio.UnaryUnaryCall[pb.GetMetricsRequest, pb.GetMetricsResponse]
        call = self._stub.GetMetrics(request, timeout=timeout_s)
        return call

    async def is_active(
        self, ref: pb.ScaledObjectRef, *, timeout_s: float = CALL_TIMEOUT_S
    ) -> bool:
        reply: pb.IsActiveResponse = await self._stub.IsActive(ref, timeout=timeout_s)
        return bool(reply.result)

    def stream_is_active(
        self, ref: pb.ScaledObjectRef
    ) -> grpc.aio.UnaryStreamCall[pb.ScaledObjectRef, pb.IsActiveResponse]:
        """The `external-push` stream: iterate it for IsActive answers, `cancel()` to end."""
        call: grpc.aio.UnaryStreamCall[pb.ScaledObjectRef, pb.IsActiveResponse]
        call = self._stub.StreamIsActive(ref)
        return call

    async def target_per_pod(
        self, ref: pb.ScaledObjectRef, *, timeout_s: float = CALL_TIMEOUT_S
    ) -> float:
        """What KEDA writes into the HPA as the AverageValue target."""
        return spec_target(first_spec(await self.get_metric_spec(ref, timeout_s=timeout_s)))

    async def read(self, ref: pb.ScaledObjectRef, *, timeout_s: float = CALL_TIMEOUT_S) -> Reading:
        """One HPA query as KEDA makes it: GetMetricSpec, GetMetrics with the spec's metric
        name, then IsActive (not asked when GetMetrics failed)."""
        try:
            spec = first_spec(await self.get_metric_spec(ref, timeout_s=timeout_s))
            request = metrics_request(ref, spec.metricName)
            value = metrics_value(await self.get_metrics(request, timeout_s=timeout_s))
        except grpc.aio.AioRpcError as exc:
            return Reading(None, None, f"{exc.code().name}: {exc.details()}")
        try:
            active = await self.is_active(ref, timeout_s=timeout_s)
        except grpc.aio.AioRpcError as exc:
            return Reading(value, None, f"IsActive {exc.code().name}: {exc.details()}")
        return Reading(value, active)

    async def close(self) -> None:
        """Close the channel if this client opened it."""
        if self._owned:
            await self.channel.close(None)

    async def __aenter__(self) -> KedaClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


def read_metric_sync(
    target: str, ref: pb.ScaledObjectRef, *, timeout_s: float = CALL_TIMEOUT_S
) -> float:
    """GetMetricSpec, then GetMetrics with its metric name, on a plaintext channel of its
    own, blocking: for a thread. Raises `grpc.RpcError`."""
    with grpc.insecure_channel(target) as channel:
        stub = _stub(channel)
        spec = first_spec(stub.GetMetricSpec(ref, timeout=timeout_s))
        reply = stub.GetMetrics(metrics_request(ref, spec.metricName), timeout=timeout_s)
    return metrics_value(reply)

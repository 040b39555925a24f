"""A client built from KEDA's published protocol facts, not from our stubs or our .proto.

Package `externalscaler`, service `ExternalScaler`, the method paths and the field
numbers below are KEDA's (pkg/scalers/externalscaler/externalscaler.proto of KEDA
v2.21.0, which added StreamMetricSpec); if our proto drifted from them, these calls
would fail or read wrong fields.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from harness.fakepods import FakePod
from scaler.server import Scaler

F = descriptor_pb2.FieldDescriptorProto
KEDA_MESSAGES: dict[str, list[tuple[str, int, int, str | None, bool]]] = {
    # name: [(field, number, type, type_name, repeated)]
    "ScaledObjectRef": [
        ("name", 1, F.TYPE_STRING, None, False),
        ("namespace", 2, F.TYPE_STRING, None, False),
        (
            "scalerMetadata",
            3,
            F.TYPE_MESSAGE,
            ".externalscaler.ScaledObjectRef.ScalerMetadataEntry",
            True,
        ),
    ],
    "IsActiveResponse": [("result", 1, F.TYPE_BOOL, None, False)],
    "GetMetricSpecResponse": [
        ("metricSpecs", 1, F.TYPE_MESSAGE, ".externalscaler.MetricSpec", True)
    ],
    "MetricSpec": [
        ("metricName", 1, F.TYPE_STRING, None, False),
        ("targetSize", 2, F.TYPE_INT64, None, False),
        ("targetSizeFloat", 3, F.TYPE_DOUBLE, None, False),
    ],
    "GetMetricsRequest": [
        ("scaledObjectRef", 1, F.TYPE_MESSAGE, ".externalscaler.ScaledObjectRef", False),
        ("metricName", 2, F.TYPE_STRING, None, False),
    ],
    "GetMetricsResponse": [
        ("metricValues", 1, F.TYPE_MESSAGE, ".externalscaler.MetricValue", True)
    ],
    "MetricValue": [
        ("metricName", 1, F.TYPE_STRING, None, False),
        ("metricValue", 2, F.TYPE_INT64, None, False),
        ("metricValueFloat", 3, F.TYPE_DOUBLE, None, False),
    ],
}


def keda_classes() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="keda_externalscaler_test.proto", package="externalscaler"
    )
    file.syntax = "proto3"
    for name, fields in KEDA_MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in fields:
            field = message.field.add(name=field_name, number=number, type=kind)
            field.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
            if type_name:
                field.type_name = type_name
        if name == "ScaledObjectRef":
            entry = message.nested_type.add(name="ScalerMetadataEntry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
            entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"externalscaler.{name}"))
        for name in KEDA_MESSAGES
    }


class KedaClient:
    """The calls KEDA's external scaler code makes, over a channel, with KEDA's messages."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.msgs = keda_classes()
        self._channel = channel

    def ref(self, pods: list[FakePod], **metadata: str) -> Any:
        so_ref = self.msgs["ScaledObjectRef"](name="rating-api", namespace="edge")
        so_ref.scalerMetadata.update(
            {
                "scalerAddress": "rating-scaler.edge.svc.cluster.local:6000",
                "endpoints": ",".join(f"127.0.0.1:{pod.port}" for pod in pods),
                **metadata,
            }
        )
        return so_ref

    def _unary(self, name: str, response: str) -> Any:
        return self._channel.unary_unary(
            f"/externalscaler.ExternalScaler/{name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=self.msgs[response].FromString,
        )

    def stream(self, name: str, so_ref: Any, response: str) -> Any:
        return self._channel.unary_stream(
            f"/externalscaler.ExternalScaler/{name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=self.msgs[response].FromString,
        )(so_ref)

    async def get_metric_spec(self, so_ref: Any) -> Any:
        return await self._unary("GetMetricSpec", "GetMetricSpecResponse")(so_ref)

    async def poll(self, so_ref: Any) -> tuple[float, float, bool]:
        """KEDA's GetMetricsAndActivity: GetMetricSpec, GetMetrics by the spec's name, IsActive."""
        [spec] = (await self.get_metric_spec(so_ref)).metricSpecs
        request = self.msgs["GetMetricsRequest"](scaledObjectRef=so_ref, metricName=spec.metricName)
        [value] = (await self._unary("GetMetrics", "GetMetricsResponse")(request)).metricValues
        active = await self._unary("IsActive", "IsActiveResponse")(so_ref)
        return spec.targetSizeFloat, value.metricValueFloat, active.result


@pytest.fixture
async def keda(scaler: Scaler) -> AsyncIterator[KedaClient]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
        yield KedaClient(channel)


async def test_keda_built_client_gets_correct_answers(
    keda: KedaClient, fake_pods: Callable[..., Awaitable[FakePod]]
) -> None:
    pods = [await fake_pods(demand_per_s=15.0) for _ in range(2)]
    so_ref = keda.ref(pods, window="1")
    spec = await keda.get_metric_spec(so_ref)
    await asyncio.sleep(0.7)
    [metric_spec] = spec.metricSpecs
    _, value, active = await keda.poll(so_ref)
    stream = keda.stream("StreamIsActive", so_ref, "IsActiveResponse")
    first: Any = await asyncio.wait_for(stream.read(), 2.0)
    stream.cancel()

    assert metric_spec.metricName == "openclaw-demand"
    assert (metric_spec.targetSize, metric_spec.targetSizeFloat) == (40, pytest.approx(40.0))
    assert value == pytest.approx(30.0, rel=0.1)
    assert active is True and first.result is True


async def test_unavailable_before_any_pod_answers_then_the_target_streams_within_a_poll(
    keda: KedaClient, scaler: Scaler, fake_pods: Callable[..., Awaitable[FakePod]]
) -> None:
    pods = [await fake_pods(refill_per_s=10.0) for _ in range(2)]
    ports = [pod.port for pod in pods]
    for pod in pods:
        await pod.stop()
    so_ref = keda.ref(pods)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await keda.get_metric_spec(so_ref)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "target per pod not known yet" in (caught.value.details() or "")

    stream = keda.stream("StreamMetricSpec", so_ref, "GetMetricSpecResponse")
    reading = asyncio.ensure_future(stream.read())
    [view] = scaler.targets.views.values()
    await view.wait_cycle_after(view.cycles, 5.0)
    assert not reading.done()
    for pod, port in zip(pods, ports, strict=True):
        await pod.start(port)
    answering_from = view.cycles  # the next cycle to start sees them
    first = await asyncio.wait_for(reading, 5.0)
    assert view.cycles <= answering_from + 2  # the cycle in flight, then one poll
    assert first.metricSpecs[0].metricName == "openclaw-demand"
    assert first.metricSpecs[0].targetSizeFloat == pytest.approx(8.0)

    for pod in pods:
        pod.refill_per_s = 30.0
    changed_from = view.cycles
    second = await asyncio.wait_for(stream.read(), 5.0)
    assert view.cycles <= changed_from + 2
    assert second.metricSpecs[0].targetSizeFloat == pytest.approx(24.0)
    stream.cancel()
    target, _, _ = await keda.poll(so_ref)  # GetMetricSpec agrees with the stream
    assert target == pytest.approx(24.0)


async def test_a_fresh_scaler_beside_idle_pods_reports_zero_and_inactive_on_every_poll(
    keda: KedaClient, scaler: Scaler, fake_pods: Callable[..., Awaitable[FakePod]]
) -> None:
    pods = [await fake_pods(demand_per_s=15.9) for _ in range(2)]
    await asyncio.sleep(0.5)  # busy before the scaler ever saw them...
    for pod in pods:
        pod.set_demand(0.0)  # ...and idle from now on
    so_ref = keda.ref(pods)
    seen = []
    for _ in range(4):
        seen.append(await keda.poll(so_ref))
        [view] = scaler.targets.views.values()
        await view.wait_cycle_after(view.cycles, 5.0)
    assert [(round(target, 6), value, active) for target, value, active in seen] == [
        (40.0, 0.0, False)
    ] * 4

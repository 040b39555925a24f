"""A client built from KEDA's published protocol facts, not from our stubs or our .proto.

Package `externalscaler`, service `ExternalScaler`, the method paths and the field
numbers below are KEDA's; if our proto drifted from them, these calls would fail or
read wrong fields.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
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


async def test_keda_built_client_gets_correct_answers(
    scaler: Scaler, fake_pods: Callable[..., Awaitable[FakePod]]
) -> None:
    msgs = keda_classes()
    pods = [await fake_pods(demand_per_s=15.0) for _ in range(2)]
    ref = msgs["ScaledObjectRef"](name="rating-api", namespace="edge")
    ref.scalerMetadata.update(
        {
            "scalerAddress": "rating-scaler.edge.svc.cluster.local:6000",
            "endpoints": ",".join(f"127.0.0.1:{pod.port}" for pod in pods),
            "window": "1",
        }
    )

    async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:

        def method(name: str, request: str, response: str) -> Any:
            return channel.unary_unary(
                f"/externalscaler.ExternalScaler/{name}",
                request_serializer=lambda message: message.SerializeToString(),
                response_deserializer=msgs[response].FromString,
            )

        get_spec = method("GetMetricSpec", "ScaledObjectRef", "GetMetricSpecResponse")
        get_metrics = method("GetMetrics", "GetMetricsRequest", "GetMetricsResponse")
        is_active = method("IsActive", "ScaledObjectRef", "IsActiveResponse")
        spec = await get_spec(ref)
        await asyncio.sleep(0.7)
        [metric_spec] = spec.metricSpecs
        request = msgs["GetMetricsRequest"](scaledObjectRef=ref, metricName=metric_spec.metricName)
        [value] = (await get_metrics(request)).metricValues
        active = await is_active(ref)
        stream = channel.unary_stream(
            "/externalscaler.ExternalScaler/StreamIsActive",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=msgs["IsActiveResponse"].FromString,
        )(ref)
        first: Any = await asyncio.wait_for(stream.read(), 2.0)
        stream.cancel()

    assert metric_spec.metricName == "openclaw-demand"
    assert (metric_spec.targetSize, metric_spec.targetSizeFloat) == (40, pytest.approx(40.0))
    assert value.metricValueFloat == pytest.approx(30.0, rel=0.1)
    assert value.metricValue == round(value.metricValueFloat)
    assert active.result is True and first.result is True

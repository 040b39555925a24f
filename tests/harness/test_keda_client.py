"""`harness.keda_client`: KEDA's calls to a real `rating-scaler` over gRPC, and its reading
of the answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from harness import Child, RatingScaler, free_port, start_async
from harness.fakepods import FakePod
from harness.keda_client import (
    KedaClient,
    keda_value,
    metrics_request,
    read_metric_sync,
    scaled_object_ref,
)
from scaler._proto import externalscaler_pb2 as pb

DEMAND_PER_S = 30.0
REFILL_PER_S = 50.0


@dataclass
class Scaler:
    child: Child
    grpc_target: str
    pods: list[FakePod]

    def ref(self, **metadata: str) -> pb.ScaledObjectRef:
        endpoints = ",".join(f"127.0.0.1:{pod.port}" for pod in self.pods)
        keys = {"scalerAddress": self.grpc_target, "endpoints": endpoints, "window": "2"}
        keys["targetUtilization"] = "0.8"
        return scaled_object_ref("rating-api", "edge", keys | metadata)


@pytest.fixture
async def scaler(tmp_path: Path) -> AsyncIterator[Scaler]:
    pods = [FakePod(demand_per_s=DEMAND_PER_S / 2, refill_per_s=REFILL_PER_S) for _ in range(2)]
    for pod in pods:
        await pod.start()
    service = RatingScaler(poll_interval_s=0.5, log_level="warning")
    child = await start_async(service, tmp_path / "scaler.log")
    try:
        yield Scaler(child, service.grpc_target, pods)
    finally:
        await child.stop_async()
        for pod in pods:
            await pod.stop()


async def settled_value(client: KedaClient, ref: pb.ScaledObjectRef) -> float | None:
    """The value once it is within 5 % of the pods' demand (the window fills first)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        reading = await client.read(ref)
        if reading.value is not None and abs(reading.value - DEMAND_PER_S) < 0.05 * DEMAND_PER_S:
            return reading.value
        await asyncio.sleep(0.2)
    return None


async def test_a_read_is_the_pods_demand_and_activity(scaler: Scaler) -> None:
    async with KedaClient.insecure(scaler.grpc_target) as client:
        ref = scaler.ref()
        assert await settled_value(client, ref) is not None
        reading = await client.read(ref)
        assert reading.active is True and reading.error is None
        assert await client.target_per_pod(ref) == pytest.approx(0.8 * REFILL_PER_S)


async def test_the_blocking_read_gives_the_same_value(scaler: Scaler) -> None:
    async with KedaClient.insecure(scaler.grpc_target) as client:
        ref = scaler.ref()
        assert await settled_value(client, ref) is not None
    value = await asyncio.to_thread(read_metric_sync, scaler.grpc_target, ref)
    assert value == pytest.approx(DEMAND_PER_S, rel=0.05)


async def test_the_raw_calls_and_the_push_stream(scaler: Scaler) -> None:
    async with KedaClient.insecure(scaler.grpc_target) as client:
        ref = scaler.ref()
        spec = (await client.get_metric_spec(ref)).metricSpecs[0]
        assert spec.metricName == "openclaw-demand"
        assert await settled_value(client, ref) is not None
        reply = await client.get_metrics(metrics_request(ref, spec.metricName))
        assert reply.metricValues[0].metricValueFloat == pytest.approx(DEMAND_PER_S, rel=0.05)
        assert await client.is_active(ref) is True
        stream = client.stream_is_active(ref)
        try:
            first = await asyncio.wait_for(anext(aiter(stream)), 10)
        finally:
            stream.cancel()
        assert first.result is True


async def test_a_refused_trigger_reads_as_a_failure_naming_the_key(scaler: Scaler) -> None:
    async with KedaClient.insecure(scaler.grpc_target) as client:
        reading = await client.read(scaler.ref(metric="bogus"))
    assert (reading.value, reading.active) == (None, None)
    assert reading.error is not None and reading.error.startswith("INVALID_ARGUMENT")
    assert "metric" in reading.error


async def test_an_unreachable_scaler_reads_as_unavailable() -> None:
    async with KedaClient.insecure(f"127.0.0.1:{free_port()}") as client:
        reading = await client.read(scaled_object_ref("a", "b", {}), timeout_s=2)
    assert reading.value is None and reading.error is not None
    assert reading.error.startswith("UNAVAILABLE")
    with pytest.raises(grpc.RpcError):
        read_metric_sync(f"127.0.0.1:{free_port()}", scaled_object_ref("a", "b", {}), timeout_s=2)


@pytest.mark.parametrize(
    ("as_float", "as_int", "expected"),
    [(123.4567, 123, 123.457), (0.0, 7, 7.0), (-1.0, -2, 0.0), (float("nan"), 0, 0.0),
     (float("inf"), 0, 0.0)],
    ids=["float-to-3-decimals", "int-when-float-is-0", "negative", "nan", "inf"],
)  # fmt: skip
def test_keda_value(as_float: float, as_int: int, expected: float) -> None:
    assert keda_value(as_float, as_int) == expected

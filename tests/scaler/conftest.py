from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.config import ScalerConfig
from scaler.server import Scaler, start

FAST = ScalerConfig(
    host="127.0.0.1", grpc_port=0, http_port=0, poll_interval_s=0.2, pod_timeout_s=0.1
)


@pytest.fixture
async def fake_pods() -> AsyncIterator[Callable[..., Awaitable[FakePod]]]:
    started: list[FakePod] = []

    async def make(**kwargs: object) -> FakePod:
        pod = FakePod(**kwargs)  # type: ignore[arg-type]
        await pod.start()
        started.append(pod)
        return pod

    yield make
    for pod in started:
        await pod.stop()


@pytest.fixture
async def scaler() -> AsyncIterator[Scaler]:
    """A real scaler (grpc.aio + HTTP) on 127.0.0.1, in this test's event loop."""
    running = await start(FAST)
    yield running
    await running.stop()


@pytest.fixture
async def stub(scaler: Scaler) -> AsyncIterator[pb_grpc.ExternalScalerStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
        yield pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]


def ref(pods: list[FakePod], name: str = "rating-api", **metadata: str) -> pb.ScaledObjectRef:
    """A ScaledObjectRef as KEDA sends it: every trigger key, scalerAddress included."""
    endpoints = ",".join(f"127.0.0.1:{pod.port}" for pod in pods)
    keys = {"scalerAddress": "rating-scaler.edge.svc.cluster.local:6000", "endpoints": endpoints}
    return pb.ScaledObjectRef(name=name, namespace="edge", scalerMetadata=keys | metadata)


def with_config(**changes: object) -> ScalerConfig:
    return dataclasses.replace(FAST, **changes)  # type: ignore[arg-type]

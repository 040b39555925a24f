"""A fleet behind rating-activator: the scaler reads the held requests as demand.

A real scaler (in this loop), a real rating-activator process and its admin port, a
real client sending the requests it holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest

from harness import RatingActivator, wait_http_ok_async
from harness.keda_client import KedaClient
from scaler._proto import externalscaler_pb2 as pb
from scaler.server import Scaler, start
from tests.conftest import ActivatorFactory
from tests.scaler.conftest import with_config

BATCH = {"items": [{"id": "agent-42", "up": 42, "down": 7}]}
SLOW_POLL = 30.0  # no poll cycle comes during a test: what it sees came by the watch


@pytest.fixture
async def slow_scaler() -> AsyncIterator[Scaler]:
    running = await start(with_config(poll_interval_s=SLOW_POLL, pod_timeout_s=1.0))
    yield running
    await running.stop()


@pytest.fixture
async def keda(slow_scaler: Scaler) -> AsyncIterator[KedaClient]:
    async with KedaClient.insecure(f"127.0.0.1:{slow_scaler.grpc_port}") as client:
        yield client


def at_zero(service: RatingActivator, **metadata: str) -> pb.ScaledObjectRef:
    """A fleet at zero: no pod to name, its activator's admin port, its own target."""
    keys = {
        "scalerAddress": "rating-scaler.edge.svc.cluster.local:6000",
        "activatorEndpoints": service.admin_address,
        "targetPerPod": "8",
    }
    return pb.ScaledObjectRef(name="rating-api", namespace="edge", scalerMetadata=keys | metadata)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def send_held(
    session: aiohttp.ClientSession, service: RatingActivator, count: int
) -> list[asyncio.Task[int]]:
    async def one() -> int:
        async with session.post(service.public_url + "/v1/rate", json=BATCH) as response:
            return response.status

    return [asyncio.create_task(one()) for _ in range(count)]


async def test_a_fleet_at_zero_is_answered_not_failed(
    activator: ActivatorFactory, keda: KedaClient
) -> None:
    service, _ = await activator(hold_timeout_s=30)
    reading = await keda.read(at_zero(service))
    assert (reading.value, reading.active, reading.error) == (0.0, False, None)
    assert await keda.target_per_pod(at_zero(service)) == 8.0


async def test_the_first_held_request_wakes_the_stream_without_waiting_for_a_poll(
    activator: ActivatorFactory, keda: KedaClient, session: aiohttp.ClientSession
) -> None:
    service, _ = await activator(hold_timeout_s=30)
    stream = keda.stream_is_active(at_zero(service))
    messages = aiter(stream)
    first = await asyncio.wait_for(anext(messages), 5.0)
    assert first.result is False  # the state at once: idle
    held = await send_held(session, service, 3)
    woken = await asyncio.wait_for(anext(messages), 10.0)  # far sooner than the 30 s poll
    assert woken.result is True
    reading = await keda.read(at_zero(service))
    assert reading.active is True and reading.value is not None and reading.value >= 1.0
    stream.cancel()
    for task in held:
        task.cancel()
    await asyncio.gather(*held, return_exceptions=True)


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        pytest.param({"activator": "Edge/Activator"}, "activator", id="not-a-service"),
        pytest.param(
            {"activator": "edge/rating-activator", "activatorEndpoints": "127.0.0.1:9092"},
            "activatorEndpoints",
            id="both",
        ),
        pytest.param({"activator": "payments/rating-activator"}, "activator", id="other-ns"),
        pytest.param({"activatorEndpoints": "127.0.0.1:0"}, "activatorEndpoints", id="port-0"),
        pytest.param({"activatorPort": "70000"}, "activatorPort", id="port-range"),
    ],
)
async def test_a_bad_activator_key_is_named(
    keda: KedaClient, metadata: dict[str, str], key: str
) -> None:
    base = {"scalerAddress": "rating-scaler:6000", "targetPerPod": "8"}
    if "activator" not in metadata and "activatorEndpoints" not in metadata:
        base["activatorEndpoints"] = "127.0.0.1:9092"
    ref = pb.ScaledObjectRef(name="rating-api", namespace="edge", scalerMetadata=base | metadata)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await keda.get_metric_spec(ref)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"metadata {key!r}" in (caught.value.details() or "")


async def test_an_activator_killed_while_holding_still_wakes_the_fleet_once_back(
    activator: ActivatorFactory, scaler: Scaler, session: aiohttp.ClientSession
) -> None:
    """The held clients see their connection end without an answer, as with any server
    that dies; the activator's replacement holds the next request, and the scaler's
    stream says true again."""
    service, child = await activator(hold_timeout_s=30)
    async with KedaClient.insecure(f"127.0.0.1:{scaler.grpc_port}") as keda:
        stream = keda.stream_is_active(at_zero(service))
        messages = aiter(stream)
        seen = [(await asyncio.wait_for(anext(messages), 5.0)).result]
        held = await send_held(session, service, 2)
        seen.append((await asyncio.wait_for(anext(messages), 10.0)).result)
        child.kill()
        outcomes = await asyncio.gather(*held, return_exceptions=True)
        assert all(isinstance(outcome, aiohttp.ClientError) for outcome in outcomes), outcomes
        child.start()
        await wait_http_ok_async(service.ready_urls[0], child, timeout_s=10.0)
        seen.append((await asyncio.wait_for(anext(messages), 10.0)).result)  # nothing held
        again = await send_held(session, service, 1)
        seen.append((await asyncio.wait_for(anext(messages), 10.0)).result)
        assert seen == [False, True, False, True]
        stream.cancel()
        for task in again:
            task.cancel()
        await asyncio.gather(*again, return_exceptions=True)

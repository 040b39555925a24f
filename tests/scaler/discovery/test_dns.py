"""`service` discovery through a real DNS server on loopback, records changing between polls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import grpc
import pytest

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.discovery import DiscoveryError
from scaler.discovery.dns import DnsDiscovery, make_resolver
from scaler.server import start
from tests.fakes.dns import Records, dns_server
from tests.scaler.conftest import with_config

SERVICE = "rating-api-admin.edge.svc.cluster.local"


@pytest.fixture
def dns() -> Iterator[tuple[Records, int]]:
    with dns_server() as running:
        yield running


async def test_dns_discovery_follows_records(dns: tuple[Records, int]) -> None:
    records, port = dns
    discovery = DnsDiscovery(SERVICE, 9090, make_resolver(("127.0.0.1", port), 1.0))
    records.set(SERVICE, ["127.0.0.3", "127.0.0.2", "::1"])
    assert await discovery.addresses() == [("127.0.0.2", 9090), ("127.0.0.3", 9090), ("::1", 9090)]
    records.set(SERVICE, ["127.0.0.2"])
    assert await discovery.addresses() == [("127.0.0.2", 9090)]
    records.set(SERVICE, [])
    assert await discovery.addresses() == []


async def test_unknown_name_is_no_pods_and_servfail_is_an_error(dns: tuple[Records, int]) -> None:
    records, port = dns
    discovery = DnsDiscovery(
        "nothing.edge.svc.cluster.local", 9090, make_resolver(("127.0.0.1", port), 1.0)
    )
    assert await discovery.addresses() == []
    records.failing = True
    with pytest.raises(DiscoveryError, match=r"nothing\.edge\.svc"):
        await discovery.addresses()


async def test_scaler_sees_pods_come_and_go_through_dns(
    dns: tuple[Records, int], fake_pods: Callable[..., Awaitable[FakePod]]
) -> None:
    """Pods on 127.0.0.x addresses sharing one port, as pods behind a headless Service do."""
    records, dns_port = dns
    first = await fake_pods(demand_per_s=10.0)
    port = first.port
    others = [FakePod(demand_per_s=10.0) for _ in range(2)]
    for address, pod in zip(("127.0.0.2", "127.0.0.3"), others, strict=True):
        pod._server = await asyncio.start_server(pod._serve, address, port)
    records.set(SERVICE, ["127.0.0.1"])
    config = with_config(dns_server=("127.0.0.1", dns_port))
    scaler = await start(config)
    so_ref = pb.ScaledObjectRef(
        name="rating-api", namespace="edge",
        scalerMetadata={"service": SERVICE, "port": str(port), "window": "0.5"},
    )  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
            request = pb.GetMetricsRequest(scaledObjectRef=so_ref)

            async def demand_after_settling() -> float:
                await asyncio.sleep(1.0)
                answer = await stub.GetMetrics(request)
                return float(answer.metricValues[0].metricValueFloat)

            await stub.GetMetricSpec(so_ref)
            assert await demand_after_settling() == pytest.approx(10.0, rel=0.15)
            records.set(SERVICE, ["127.0.0.1", "127.0.0.2", "127.0.0.3"])
            assert await demand_after_settling() == pytest.approx(30.0, rel=0.15)
            records.set(SERVICE, ["127.0.0.3"])
            assert await demand_after_settling() == pytest.approx(10.0, rel=0.15)
            poller = scaler.targets.pollers[next(iter(scaler.targets.pollers))]
            assert list(poller.pods) == [f"127.0.0.3:{port}"]
    finally:
        await scaler.stop()
        for pod in others:
            await pod.stop()

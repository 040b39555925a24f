"""EndpointSlice discovery through the real client library, against a stand-in API server.

Pod addresses come from the API (10.0.0.x, as in a cluster); a loopback "network"
answers them with fake pods on 127.0.0.1, so no packet leaves this machine.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from kubernetes_asyncio.client import V1Endpoint, V1EndpointConditions

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.bucket_state import BucketState
from scaler.discovery import DiscoveryError
from scaler.discovery.endpointslices import EndpointSliceDiscovery, KubeApi, serving_addresses
from scaler.pod_client import PodClient
from scaler.pod_errors import PodError
from scaler.server import Scaler, build
from tests.scaler.conftest import with_config
from tests.scaler.discovery.fake_kubeapi import FakeKubeApi, endpoint, endpoint_slice

PodFactory = Callable[..., Awaitable[FakePod]]


class LoopbackNetwork(PodClient):
    """Answers pod IPs with fake pods on 127.0.0.1: what a cluster network would route."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(timeout_s)
        self.pods: dict[str, FakePod] = {}

    async def fetch(self, host: str, port: int) -> BucketState:
        pod = self.pods.get(host)
        if pod is None:
            raise PodError("connect", f"no pod at {host}:{port}")
        return await super().fetch("127.0.0.1", pod.port)


async def scaler_with_network(kubeconfig: Path) -> tuple[Scaler, LoopbackNetwork]:
    scaler = build(with_config(kubeconfig=kubeconfig, poll_interval_s=0.5, pod_timeout_s=0.2))
    network = LoopbackNetwork(0.2)
    scaler.client = network  # before start(): the pollers take their fetch from it
    await scaler.start()
    return scaler, network


def so_ref(slices: str, **metadata: str) -> pb.ScaledObjectRef:
    keys = {"scalerAddress": "rating-scaler.edge.svc.cluster.local:6000", "endpointSlices": slices}
    return pb.ScaledObjectRef(name="rating-api", namespace="edge", scalerMetadata=keys | metadata)


async def targets_view(scaler: Scaler) -> dict[str, Any]:
    def get() -> dict[str, Any]:
        url = f"http://127.0.0.1:{scaler.http_port}/v1/targets"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    return await asyncio.to_thread(get)


async def listed_addresses(scaler: Scaler) -> set[str]:
    [target] = (await targets_view(scaler))["targets"]
    return {pod["address"] for pod in target["pods"]}


async def until(check: Callable[[], Awaitable[bool]], tries: int = 200) -> None:
    """Wait for `check` (bounded in tries); tests then assert how many polls it took."""
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def spec_once_polled(
    stub: pb_grpc.ExternalScalerStub, ref: pb.ScaledObjectRef
) -> pb.GetMetricSpecResponse:
    """GetMetricSpec, asked again while it is UNAVAILABLE because the first poll (the
    slices' first list, then the pods) takes longer than the RPC waits, as KEDA asks."""
    for _ in range(50):
        try:
            spec: pb.GetMetricSpecResponse = await stub.GetMetricSpec(ref)
            return spec
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("GetMetricSpec stayed UNAVAILABLE")


@pytest.mark.parametrize(
    ("conditions", "counted"),
    [
        pytest.param(V1EndpointConditions(ready=True), True, id="ready"),
        pytest.param(V1EndpointConditions(ready=False), False, id="not-ready"),
        pytest.param(V1EndpointConditions(), True, id="unknown-means-ready"),
        pytest.param(None, True, id="no-conditions"),
        pytest.param(
            V1EndpointConditions(ready=False, serving=True, terminating=True), False, id="draining"
        ),
        pytest.param(V1EndpointConditions(ready=True, terminating=True), False, id="terminating"),
    ],
)
def test_only_ready_and_not_terminating_endpoints_count(
    conditions: V1EndpointConditions | None, counted: bool
) -> None:
    endpoints = [V1Endpoint(addresses=["10.0.0.1", "10.0.0.2"], conditions=conditions)]
    expected = {"10.0.0.1", "10.0.0.2"} if counted else set()
    assert serving_addresses(endpoints) == expected


@pytest.fixture
async def kube() -> AsyncIterator[FakeKubeApi]:
    api = FakeKubeApi()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def discovery(
    kube: FakeKubeApi, tmp_path: Path
) -> AsyncIterator[tuple[EndpointSliceDiscovery, list[int]]]:
    changes: list[int] = []
    api = KubeApi(kube.kubeconfig(tmp_path))
    found = EndpointSliceDiscovery("edge", "rating-api-admin", 9090, api)
    found.start(lambda: changes.append(1))
    yield found, changes
    await found.close()
    await api.close()


async def addresses_are(found: EndpointSliceDiscovery, expected: set[str]) -> None:
    async def check() -> bool:
        return {host for host, _ in await found.addresses()} == expected

    await until(check)


async def test_list_then_watch_follows_every_slice_of_the_service(
    kube: FakeKubeApi, discovery: tuple[EndpointSliceDiscovery, list[int]]
) -> None:
    found, changes = discovery
    await kube.put(endpoint_slice("admin-a", "rating-api-admin", [endpoint("10.0.0.1")]))
    await kube.put(
        endpoint_slice(
            "admin-b",
            "rating-api-admin",
            [endpoint("10.0.0.2"), endpoint("10.0.0.3", ready=False)],
        )
    )
    await kube.put(endpoint_slice("other", "rating-api", [endpoint("10.0.9.9")]))
    await addresses_are(found, {"10.0.0.1", "10.0.0.2"})
    assert await found.addresses() == [("10.0.0.1", 9090), ("10.0.0.2", 9090)]

    await kube.put(
        endpoint_slice("admin-b", "rating-api-admin", [endpoint("10.0.0.2"), endpoint("10.0.0.3")])
    )
    await addresses_are(found, {"10.0.0.1", "10.0.0.2", "10.0.0.3"})
    seen = len(changes)
    await kube.put(
        endpoint_slice(
            "admin-a", "rating-api-admin", [endpoint("10.0.0.1", ready=False, terminating=True)]
        )
    )
    await addresses_are(found, {"10.0.0.2", "10.0.0.3"})
    await kube.delete("admin-b")
    await addresses_are(found, set())
    assert len(changes) == seen + 2  # each change of the ready set woke the poller once
    assert kube.lists == 1  # one list, then the watch


async def test_a_watch_the_server_ends_is_resumed_and_410_lists_again(
    kube: FakeKubeApi, discovery: tuple[EndpointSliceDiscovery, list[int]]
) -> None:
    found, _ = discovery
    await kube.put(endpoint_slice("admin-a", "rating-api-admin", [endpoint("10.0.0.1")]))
    await addresses_are(found, {"10.0.0.1"})
    await kube.end_watches()  # the watch's timeoutSeconds: resume from its resourceVersion
    await kube.put(endpoint_slice("admin-b", "rating-api-admin", [endpoint("10.0.0.2")]))
    await addresses_are(found, {"10.0.0.1", "10.0.0.2"})
    assert kube.lists == 1

    await kube.compact()  # history gone: the next watch from the old version gets 410
    await kube.end_watches()
    await kube.put(endpoint_slice("admin-c", "rating-api-admin", [endpoint("10.0.0.3")]))
    await addresses_are(found, {"10.0.0.1", "10.0.0.2", "10.0.0.3"})
    assert kube.lists == 2  # listed again after the 410


async def test_forbidden_names_the_permission_and_no_api_names_the_flag(
    kube: FakeKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube.forbidden = True
    api = KubeApi(kube.kubeconfig(tmp_path))
    found = EndpointSliceDiscovery("edge", "rating-api-admin", 9090, api)
    found.start(lambda: None)
    try:
        with pytest.raises(DiscoveryError) as caught:
            await found.addresses()
        assert "HTTP 403" in str(caught.value)
        assert "get, list and watch on endpointslices" in str(caught.value)
    finally:
        await found.close()
        await api.close()

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    nowhere = KubeApi(None)
    with pytest.raises(DiscoveryError) as caught:
        await nowhere.discovery_v1()
    assert "in-cluster" in str(caught.value) and "--kubeconfig" in str(caught.value)


async def test_the_scaler_polls_new_ready_pods_within_a_poll_and_drops_leaving_ones(
    kube: FakeKubeApi, tmp_path: Path, fake_pods: PodFactory
) -> None:
    scaler, network = await scaler_with_network(kube.kubeconfig(tmp_path))
    try:
        for index in range(1, 5):
            network.pods[f"10.0.0.{index}"] = await fake_pods(demand_per_s=10.0)
        two = [endpoint("10.0.0.1"), endpoint("10.0.0.2")]
        await kube.put(endpoint_slice("admin-a", "rating-api-admin", two))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
            spec = await spec_once_polled(stub, so_ref("edge/rating-api-admin"))
        assert spec.metricSpecs[0].targetSizeFloat == pytest.approx(40.0)
        [view] = scaler.targets.views.values()
        assert await listed_addresses(scaler) == {"10.0.0.1:9090", "10.0.0.2:9090"}

        more = [endpoint("10.0.0.3"), endpoint("10.0.0.4", ready=False)]
        await kube.put(endpoint_slice("admin-b", "rating-api-admin", more))
        before = view.cycles

        async def third_listed() -> bool:
            return "10.0.0.3:9090" in await listed_addresses(scaler)

        await until(third_listed)
        assert view.cycles <= before + 1  # within one poll interval of the slice update
        assert "10.0.0.4:9090" not in await listed_addresses(scaler)  # not ready

        leaving = [endpoint("10.0.0.1", ready=False, terminating=True), endpoint("10.0.0.2")]
        await kube.put(endpoint_slice("admin-a", "rating-api-admin", leaving))
        await kube.delete("admin-b")
        before = view.cycles

        async def only_second() -> bool:
            return await listed_addresses(scaler) == {"10.0.0.2:9090"}

        await until(only_second)
        assert view.cycles <= before + 1
        requests_then = network.pods["10.0.0.1"].requests
        await view.wait_cycle_after(view.cycles, 5.0)
        assert network.pods["10.0.0.1"].requests == requests_then  # no longer polled
    finally:
        await scaler.stop()

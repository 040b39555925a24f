"""The public EndpointSlice and its one writer, against a real etcd and kube-apiserver.

Two writers with one Lease, as two activator replicas run: one writes, the other
waits; the slice follows the ready pods, and the activators while none is ready; a
writer that leaves hands over at once. Skipped where the binaries are absent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from activator.publish import Desired, Lease, SliceWriter, slice_body
from scaler.discovery.endpointslices import KubeApi
from tests.scaler.discovery.test_endpointslices_apiserver import admin, apiserver

__all__ = ["admin", "apiserver"]  # fixtures, used by name
NAMESPACE = "edge"
pytestmark = pytest.mark.slow


@pytest.fixture
async def namespace(admin: client.ApiClient) -> AsyncIterator[str]:
    core = client.CoreV1Api(admin)
    name = f"{NAMESPACE}-{id(admin) % 100000}"
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name


def writer(apiserver: Any, namespace: str, identity: str) -> tuple[SliceWriter, Desired, Lease]:
    api = KubeApi(Path(apiserver.kubeconfig))
    desired = Desired()
    lease = Lease(api, namespace, "rating-activator", identity)
    return SliceWriter(api, namespace, "rating-api", 8080, desired, lease), desired, lease


async def public_slice(admin: client.ApiClient, namespace: str) -> tuple[list[str], int]:
    found = await client.DiscoveryV1Api(admin).read_namespaced_endpoint_slice(
        "rating-api-activator", namespace
    )
    assert found.metadata.labels["kubernetes.io/service-name"] == "rating-api"
    addresses = sorted(address for ep in found.endpoints or [] for address in ep.addresses)
    return addresses, found.ports[0].port


async def until_slice(
    admin: client.ApiClient, namespace: str, expected: tuple[list[str], int]
) -> None:
    for _ in range(200):
        try:
            if await public_slice(admin, namespace) == expected:
                return
        except client.exceptions.ApiException:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"the slice never became {expected}: {await public_slice(admin, namespace)}"
    )


async def test_one_writer_keeps_the_slice_on_the_pods_or_else_the_activators(
    apiserver: Any, admin: client.ApiClient, namespace: str
) -> None:
    first, first_wants, first_lease = writer(apiserver, namespace, "activator-a")
    second, second_wants, second_lease = writer(apiserver, namespace, "activator-b")
    for wants in (first_wants, second_wants):
        wants.set_activators(["10.0.1.1:8080", "10.0.1.2:8080"])
    running = [asyncio.create_task(first.run())]
    await until_slice(admin, namespace, (["10.0.1.1", "10.0.1.2"], 8080))  # at zero
    running.append(asyncio.create_task(second.run()))
    for wants in (first_wants, second_wants):
        wants.set_rating_pods(["10.0.0.7:8080"])
    await until_slice(admin, namespace, (["10.0.0.7"], 8080))  # a pod is ready
    assert first_lease.held and not second_lease.held and second.writes == 0
    for wants in (first_wants, second_wants):
        wants.set_rating_pods([])
    await until_slice(admin, namespace, (["10.0.1.1", "10.0.1.2"], 8080))  # back at zero

    running[0].cancel()
    await asyncio.gather(running[0], return_exceptions=True)
    await first.close()  # gives the Lease up: the other writes without waiting it out
    second_wants.set_rating_pods(["10.0.0.8:8080", "10.0.0.9:8080"])
    await until_slice(admin, namespace, (["10.0.0.8", "10.0.0.9"], 8080))
    assert second_lease.held and second.writes >= 1
    running[1].cancel()
    await asyncio.gather(running[1], return_exceptions=True)
    await second.close()


def test_a_slice_lists_hosts_once_on_their_one_port() -> None:
    body = slice_body("s", "rating-api", ["10.0.0.2:8080", "10.0.0.1:8080"], 9, None)
    assert [ep.addresses for ep in body.endpoints] == [["10.0.0.1"], ["10.0.0.2"]]
    assert (body.address_type, body.ports[0].port, body.ports[0].name) == ("IPv4", 8080, "http")
    assert slice_body("s", "rating-api", ["[fd00::1]:8080"], 9, "7").address_type == "IPv6"
    assert slice_body("s", "rating-api", [], 8080, None).ports[0].port == 8080
    with pytest.raises(ValueError, match="one port"):
        slice_body("s", "rating-api", ["10.0.0.1:8080", "10.0.0.2:9000"], 9, None)

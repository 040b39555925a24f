"""EndpointSlice discovery against a real etcd and kube-apiserver, as `make e2e` builds them.

The scaler reads the slices with a ServiceAccount token that has exactly the Role in
manifests/base/scaler/rbac.yaml. The Service has no selector: the test writes its
EndpointSlices itself, as the EndpointSlice controller would. Their addresses are
10.0.0.x, as in a cluster (the API refuses loopback ones); the loopback "network" of
test_endpointslices.py answers them with fake pods, so nothing is sent off this host.
Skipped, with the command that builds them, where the binaries are absent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from kubernetes_asyncio import client, config

from harness.fakepods import FakePod
from harness.group import Group, component, wait_for
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.server import Scaler
from tests.scaler.discovery.test_endpointslices import (
    listed_addresses,
    scaler_with_network,
    so_ref,
    until,
)

e2e_build = pytest.importorskip("e2e.cluster.build")
control_plane = pytest.importorskip("e2e.cluster.control_plane")

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
NAMESPACE = "edge"
SERVICE = "rating-api-admin"
PodFactory = Callable[..., Awaitable[FakePod]]


def _binaries() -> list[Path]:
    return [e2e_build.binary("etcd"), e2e_build.binary("kube-apiserver")]


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """etcd and kube-apiserver on 127.0.0.1 (no controllers: the test writes the slices)."""
    missing = [str(path) for path in _binaries() if not path.is_file()]
    if missing:
        pytest.skip(
            f"needs {', '.join(missing)}: `python -m e2e.cluster.build` (make e2e) builds them"
        )
    run = tmp_path_factory.mktemp("apiserver")
    keys = control_plane.make_pki(run / "pki")
    etcd_port, peer_port, api_port = (control_plane.free_port() for _ in range(3))
    procs = Group(one_by_one=True)
    try:
        etcd = control_plane.etcd_argv(run / "etcd", etcd_port, peer_port)
        procs.start(component("etcd", etcd, run / "etcd.log"))
        api = control_plane.apiserver_argv(keys, etcd_port, api_port)
        procs.start(component("kube-apiserver", api, run / "kube-apiserver.log"))
        server = f"https://{control_plane.HOST}:{api_port}"
        kubeconfig = run / "admin.kubeconfig"
        kubeconfig.write_text(
            control_plane.kubeconfig_text(
                server, keys.ca.pair.cert, keys.admin.cert, keys.admin.key
            )
        )
        plane = control_plane.ControlPlane(server, kubeconfig, keys, 15.0)
        ready = lambda: plane.get("/readyz") == "ok"  # noqa: E731
        wait_for("kube-apiserver /readyz", ready, control_plane.START_TIMEOUT_S, procs)
        yield plane
    finally:
        procs.stop_all()


@pytest.fixture
async def admin(apiserver: Any) -> AsyncIterator[client.ApiClient]:
    api = await config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    yield api
    await api.close()


async def scaler_kubeconfig(apiserver: Any, admin: client.ApiClient, directory: Path) -> Path:
    """The namespace, the scaler's ServiceAccount with the manifests' Role, and its token."""
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    account = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="rating-scaler"))
    await core.create_namespaced_service_account(NAMESPACE, account)
    role, binding = yaml.safe_load_all((ROOT / "manifests/base/scaler/rbac.yaml").read_text())
    binding["subjects"][0]["namespace"] = NAMESPACE  # what kustomize's namespace sets
    await rbac.create_namespaced_role(NAMESPACE, role)
    await rbac.create_namespaced_role_binding(NAMESPACE, binding)
    spec = client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)  # the server's own
    request = client.AuthenticationV1TokenRequest(spec=spec)
    token = await core.create_namespaced_service_account_token("rating-scaler", NAMESPACE, request)
    path = directory / "scaler.kubeconfig"
    cluster = {"server": apiserver.server, "certificate-authority": str(apiserver.pki.ca.pair.cert)}
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "scaler",
                "clusters": [{"name": "e2e", "cluster": cluster}],
                "users": [{"name": "scaler", "user": {"token": token.status.token}}],
                "contexts": [{"name": "scaler", "context": {"cluster": "e2e", "user": "scaler"}}],
            }
        )
    )
    return path


def endpoint_slice(name: str, ready: list[str], terminating: tuple[str, ...] = ()) -> Any:
    endpoints = [
        {"addresses": [address], "conditions": {"ready": True, "serving": True}}
        for address in ready
    ] + [
        {"addresses": [address], "conditions": {"ready": False, "terminating": True}}
        for address in terminating
    ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": "tests.openclaw",
            },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "admin", "port": 9090, "protocol": "TCP"}],
    }


async def test_scaling_from_2_to_6_pods_and_back_is_seen_within_a_poll(
    apiserver: Any, admin: client.ApiClient, tmp_path: Path, fake_pods: PodFactory
) -> None:
    kubeconfig = await scaler_kubeconfig(apiserver, admin, tmp_path)
    core, discovery = client.CoreV1Api(admin), client.DiscoveryV1Api(admin)
    port = client.V1ServicePort(name="admin", port=9090, target_port=9090)
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name=SERVICE),
        spec=client.V1ServiceSpec(cluster_ip="None", ports=[port]),  # no selector
    )
    await core.create_namespaced_service(NAMESPACE, service)
    pods = [f"10.0.0.{index}" for index in range(1, 7)]
    await discovery.create_namespaced_endpoint_slice(NAMESPACE, endpoint_slice("a", pods[:2]))

    scaler, network = await scaler_with_network(kubeconfig)
    try:
        for address in pods:
            network.pods[address] = await fake_pods(demand_per_s=10.0)
        await first_answer(scaler)
        [view] = scaler.targets.views.values()
        assert await listed_addresses(scaler) == {f"{pod}:9090" for pod in pods[:2]}

        await discovery.replace_namespaced_endpoint_slice(
            "a", NAMESPACE, endpoint_slice("a", pods[:3])
        )
        await discovery.create_namespaced_endpoint_slice(NAMESPACE, endpoint_slice("b", pods[3:]))
        await listed_within_a_poll(scaler, view, {f"{pod}:9090" for pod in pods})

        await discovery.replace_namespaced_endpoint_slice(
            "a", NAMESPACE, endpoint_slice("a", pods[:2], terminating=(pods[2],))
        )
        await discovery.delete_namespaced_endpoint_slice("b", NAMESPACE)
        await listed_within_a_poll(scaler, view, {f"{pod}:9090" for pod in pods[:2]})
        polled = {address: network.pods[address].requests for address in pods[2:]}
        await view.wait_cycle_after(view.cycles, 5.0)
        assert {address: network.pods[address].requests for address in pods[2:]} == polled
    finally:
        await scaler.stop()


async def first_answer(scaler: Scaler) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        spec = await stub.GetMetricSpec(so_ref(f"{NAMESPACE}/{SERVICE}"))
    assert spec.metricSpecs[0].targetSizeFloat == pytest.approx(40.0)


async def listed_within_a_poll(scaler: Scaler, view: Any, expected: set[str]) -> None:
    before = view.cycles

    async def listed() -> bool:
        return await listed_addresses(scaler) == expected

    await until(listed, tries=500)
    assert view.cycles <= before + 1, "not listed within one poll interval"
    await asyncio.sleep(0)

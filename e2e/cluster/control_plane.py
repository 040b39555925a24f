"""etcd, kube-apiserver and kube-controller-manager on 127.0.0.1, as a one-node test
cluster runs them (the HPA controller in a controller manager of its own, started
later: see `start_hpa_controller`).

The API server authorizes with the Node authorizer (kubelet, see `e2e.cluster.node`) and RBAC
(everything the harness itself runs uses the admin client cert, group system:masters)
and has the aggregation layer on: a front-proxy CA and client cert, so KEDA's metrics
adapter can serve external.metrics.k8s.io. The `kubernetes` Service gets no endpoints
(`--endpoint-reconciler-type=none`): its address would be loopback, which Endpoints and
EndpointSlices refuse; pods reach the API server through `e2e.cluster.service_relay` instead.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from e2e.cluster import build, pki
from harness.group import Group, component, wait_for
from harness.ready import HOST as HOST  # re-exported: the loopback every component uses
from harness.ready import free_port as free_port  # re-exported for the callers' ports

SERVICE_CIDR = "10.96.0.0/24"
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "endpointslice-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "disruption-controller",
    "root-ca-certificate-publisher-controller",  # kube-root-ca.crt, for pods' tokens
    # Lifts the not-ready taint the API server puts on a new Node once kubelet says
    # Ready; without it kube-scheduler places no pod.
    "node-lifecycle-controller",
)
HPA_CONTROLLER = "horizontal-pod-autoscaler-controller"
# Beta and on by default in 1.35; said explicitly so that a change of default cannot
# silently drop the ScaledObject's `tolerance` (the API server strips the field when
# the gate is off, and the controller then applies the cluster-wide 0.1).
FEATURE_GATES = "HPAConfigurableTolerance=true"
START_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Pki:
    ca: pki.Authority
    serving: pki.Pair
    admin: pki.Pair
    front_proxy_ca: pki.Authority
    front_proxy_client: pki.Pair
    service_account: pki.Pair


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = pki.authority(directory, "ca")
    hosts = [HOST, "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    serving = pki.issue(
        ca,
        pki.Pair(directory / "apiserver.crt", directory / "apiserver.key"),
        common_name="kube-apiserver",
        hosts=[*hosts, "kubernetes.default.svc.cluster.local", "10.96.0.1"],
    )
    admin = pki.issue(
        ca,
        pki.Pair(directory / "admin.crt", directory / "admin.key"),
        common_name="openclaw-e2e-admin",
        organization="system:masters",
    )
    front_proxy_ca = pki.authority(directory, "front-proxy-ca")
    front_proxy_client = pki.issue(
        front_proxy_ca,
        pki.Pair(directory / "front-proxy-client.crt", directory / "front-proxy-client.key"),
        common_name="front-proxy-client",
    )
    sa = pki.service_account_keys(directory)
    return Pki(ca, serving, admin, front_proxy_ca, front_proxy_client, sa)


def kubeconfig_text(server: str, ca: Path, cert: Path, key: Path) -> str:
    """A kubeconfig (JSON, which is YAML) for one user on one cluster."""
    return (
        '{"apiVersion": "v1", "kind": "Config", "current-context": "e2e",\n'
        f' "clusters": [{{"name": "e2e", "cluster": {{"server": "{server}",'
        f' "certificate-authority": "{ca}"}}}}],\n'
        f' "users": [{{"name": "admin", "user": {{"client-certificate": "{cert}",'
        f' "client-key": "{key}"}}}}],\n'
        ' "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}]}\n'
    )


@dataclass(frozen=True)
class ControlPlane:
    server: str
    kubeconfig: Path
    pki: Pki
    hpa_sync_s: float

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca.pair.cert))
        context.load_cert_chain(str(self.pki.admin.cert), str(self.pki.admin.key))
        return context

    def get(self, path: str) -> str:
        request = urllib.request.Request(self.server + path)
        with urllib.request.urlopen(request, timeout=5, context=self.ssl_context()) as response:
            return str(response.read().decode())


def etcd_argv(data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    return [
        str(build.binary("etcd")),
        "--name=e2e",
        f"--data-dir={data_dir}",
        f"--listen-client-urls=http://{HOST}:{client_port}",
        f"--advertise-client-urls=http://{HOST}:{client_port}",
        f"--listen-peer-urls=http://{HOST}:{peer_port}",
        f"--initial-advertise-peer-urls=http://{HOST}:{peer_port}",
        f"--initial-cluster=e2e=http://{HOST}:{peer_port}",
        "--listen-metrics-urls=",
        "--unsafe-no-fsync",  # a throw-away store: no fsync wait on every write
        "--log-level=warn",
    ]


def apiserver_argv(keys: Pki, etcd_port: int, port: int) -> list[str]:
    return [
        str(build.binary("kube-apiserver")),
        f"--etcd-servers=http://{HOST}:{etcd_port}",
        f"--bind-address={HOST}",
        f"--advertise-address={HOST}",
        f"--secure-port={port}",
        "--endpoint-reconciler-type=none",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # Node: kubelet's own client (system:node:e2e-node) reads and writes only what
        # its pods need, as in a cluster.
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--anonymous-auth=false",
        f"--client-ca-file={keys.ca.pair.cert}",
        f"--tls-cert-file={keys.serving.cert}",
        f"--tls-private-key-file={keys.serving.key}",
        f"--service-account-key-file={keys.service_account.cert}",
        f"--service-account-signing-key-file={keys.service_account.key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--requestheader-client-ca-file={keys.front_proxy_ca.pair.cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={keys.front_proxy_client.cert}",
        f"--proxy-client-key-file={keys.front_proxy_client.key}",
        "--enable-priority-and-fairness=false",
        f"--feature-gates={FEATURE_GATES}",
        "--v=1",
    ]


def controller_manager_argv(
    keys: Pki, kubeconfig: Path, port: int, controllers: Sequence[str], hpa_sync_s: float
) -> list[str]:
    return [
        str(build.binary("kube-controller-manager")),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={HOST}",
        f"--secure-port={port}",
        "--leader-elect=false",
        f"--controllers={','.join(controllers)}",
        f"--horizontal-pod-autoscaler-sync-period={hpa_sync_s:g}s",
        f"--root-ca-file={keys.ca.pair.cert}",
        f"--service-account-private-key-file={keys.service_account.key}",
        f"--feature-gates={FEATURE_GATES}",
        "--v=1",
        # One line per HPA sync, with the tolerances applied (read by e2e.cluster.hpa_syncs).
        "--vmodule=horizontal=4",
    ]


def start(procs: Group, run_dir: Path, log_dir: Path, hpa_sync_s: float) -> ControlPlane:
    """Start the three components and wait until the API server is ready."""
    keys = make_pki(run_dir / "pki")
    etcd_port, peer_port, api_port, kcm_port = (free_port() for _ in range(4))
    procs.start(
        component("etcd", etcd_argv(run_dir / "etcd", etcd_port, peer_port), log_dir / "etcd.log")
    )
    procs.start(
        component(
            "kube-apiserver",
            apiserver_argv(keys, etcd_port, api_port),
            log_dir / "kube-apiserver.log",
        )
    )
    server = f"https://{HOST}:{api_port}"
    kubeconfig = run_dir / "admin.kubeconfig"
    kubeconfig.write_text(
        kubeconfig_text(server, keys.ca.pair.cert, keys.admin.cert, keys.admin.key)
    )
    plane = ControlPlane(server, kubeconfig, keys, hpa_sync_s)
    wait_for("kube-apiserver /readyz", lambda: plane.get("/readyz") == "ok", START_TIMEOUT_S, procs)
    argv = controller_manager_argv(keys, kubeconfig, kcm_port, CONTROLLERS, hpa_sync_s)
    procs.start(component("kube-controller-manager", argv, log_dir / "kube-controller-manager.log"))
    return plane


def hpa_log(log_dir: Path) -> Path:
    return log_dir / "kube-controller-manager-hpa.log"


def start_hpa_controller(procs: Group, plane: ControlPlane, log_dir: Path) -> None:
    """The HPA controller in a controller manager of its own, started once every HPA
    exists: the controller syncs each HPA one period after it first saw it, so all of
    them then sync in the same instant and a step lands at the same point of each
    one's sync cycle."""
    keys, port = plane.pki, free_port()
    argv = controller_manager_argv(keys, plane.kubeconfig, port, [HPA_CONTROLLER], plane.hpa_sync_s)
    procs.start(component("kube-controller-manager-hpa", argv, hpa_log(log_dir)))

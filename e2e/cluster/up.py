"""Bring the whole cluster up inside the sandbox: control plane, cluster DNS, KEDA, the
node (kubelet, containerd, kube-scheduler), Prometheus, and the project's manifests;
wait until the loop is wired."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from e2e.cluster import control_plane, helm, hpa_syncs, keda_operator, node, sandbox
from e2e.cluster.cluster_dns import DNS_HOST, ClusterDns, Endpoints
from e2e.cluster.control_plane import HOST, ControlPlane
from e2e.cluster.kube import api_client, as_json, has_condition
from e2e.cluster.observe import Observer
from e2e.cluster.offered import OfferedRates
from harness.group import Group, component, wait_for

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).parent / "kubectl"
OVERLAYS = {"direct": "e2e", "prometheus": "e2e-prometheus", "floor": "e2e-floor"}
NAMESPACES = {
    "direct": "openclaw-rating",
    "prometheus": "openclaw-rating-prom",
    "floor": "openclaw-rating-floor",
}
PROMETHEUS_PORT = 9090  # the e2e-prometheus overlay names it; the namespace is ours alone
SCRAPE_INTERVAL_S = 15
WIRED_TIMEOUT_S = 240.0

Say = Callable[[str], None]


@dataclass
class Cluster:
    plane: ControlPlane
    api: client.ApiClient
    dns: ClusterDns
    observer: Observer
    procs: Group
    log_dir: Path
    say: Say
    offered: OfferedRates

    def hpa_syncs(self) -> list[hpa_syncs.Sync]:
        """Every HPA sync so far, from the HPA controller's log."""
        path = control_plane.hpa_log(self.log_dir)
        with path.open(errors="replace") as handle:
            return hpa_syncs.parse(handle)

    def kubectl(self, *args: str, log: str = "kubectl") -> str:
        argv = [str(KUBECTL), f"--kubeconfig={self.plane.kubeconfig}", *args]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
        with (self.log_dir / f"{log}.log").open("a") as handle:
            handle.write(f"$ kubectl {' '.join(args)}\n{done.stdout}{done.stderr}\n")
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{done.stderr.strip()}")
        return done.stdout

    def apply(self, *args: str) -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", *args, log="apply")

    def wait(self, what: str, check: Callable[[], object], timeout_s: float) -> None:
        started = time.monotonic()
        wait_for(what, check, timeout_s, self.procs)
        self.say(f"  {what}: {time.monotonic() - started:.1f} s")


def prometheus_config(kubeconfig: Path) -> str:
    """Scrape every rating pod's admin port, found through this API server."""
    job = {
        "job_name": "rating-api",
        "kubernetes_sd_configs": [
            {
                "role": "pod",
                "kubeconfig_file": str(kubeconfig),
                "namespaces": {"names": list(NAMESPACES.values())},
            }
        ],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                "regex": "true",
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": "admin",
                "action": "keep",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }
    interval = f"{SCRAPE_INTERVAL_S}s"
    scrape = {"scrape_interval": interval, "scrape_timeout": "5s", "evaluation_interval": interval}
    return json.dumps({"global": scrape, "scrape_configs": [job]}, indent=2)


def start_prometheus(cluster: Cluster, run_dir: Path, binary: str) -> None:
    config_path = run_dir / "prometheus.yml"
    config_path.write_text(prometheus_config(cluster.plane.kubeconfig))
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={run_dir / 'tsdb'}",
        f"--web.listen-address={HOST}:{PROMETHEUS_PORT}",
        "--log.level=warn",
    ]
    cluster.procs.start(component("prometheus", argv, cluster.log_dir / "prometheus.log"))


def bring_up(
    procs: Group, run_dir: Path, log_dir: Path, hpa_sync_s: float, prometheus: str, say: Say
) -> Cluster:
    sandbox.set_up(run_dir / "resolv.conf", DNS_HOST)
    say("Control plane on 127.0.0.1 (etcd, kube-apiserver, kube-controller-manager):")
    started = time.monotonic()
    plane = control_plane.start(procs, run_dir, log_dir, hpa_sync_s)
    say(f"  kube-apiserver ready: {time.monotonic() - started:.1f} s ({plane.server})")
    api = api_client(plane.kubeconfig)
    offered = OfferedRates().start()
    offered.register("floor", lambda: 0.0)  # read by KEDA from the start; idle until the step
    dns = ClusterDns(api).start()
    cluster = Cluster(plane, api, dns, Observer(api), procs, log_dir, say, offered)
    say(f"  cluster DNS stand-in on {DNS_HOST}:53")
    start_keda(cluster, run_dir)
    start_node(cluster, log_dir, run_dir)
    start_prometheus(cluster, run_dir, prometheus)
    say(f"Prometheus on {HOST}:{PROMETHEUS_PORT}, scraping rating pods every {SCRAPE_INTERVAL_S} s")
    apply_manifests(cluster)
    return cluster


def start_keda(cluster: Cluster, run_dir: Path) -> None:
    cluster.say(f"KEDA: CRDs from {keda_operator.crd_dir()}, operator, metrics adapter")
    cluster.apply("-f", str(keda_operator.crd_dir()))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    _, registration = keda_operator.start(cluster.procs, cluster.plane, run_dir, cluster.log_dir)
    path = run_dir / "keda-registration.yaml"
    path.write_text(registration)
    cluster.apply("-f", str(path))
    cluster.wait(
        f"APIService {keda_operator.APISERVICE} Available",
        lambda: apiservice_available(cluster),
        120.0,
    )


def apiservice_available(cluster: Cluster) -> bool:
    found = client.ApiregistrationV1Api(cluster.api).read_api_service(keda_operator.APISERVICE)
    return has_condition(as_json(cluster.api, found), "Available")


def start_node(cluster: Cluster, log_dir: Path, run_dir: Path) -> None:
    cluster.say(f"Node {node.NODE_NAME}: kubelet, containerd (runc), kube-scheduler")
    started = time.monotonic()
    node.start(cluster.procs, cluster.plane, run_dir, log_dir)
    cluster.say(f"  {node.NODE_NAME} Ready: {time.monotonic() - started:.1f} s")


def apply_manifests(cluster: Cluster) -> None:
    for path, overlay in OVERLAYS.items():
        if path == helm.FLEET:
            cluster.say(f"{helm.install_summary()} ({path} path)")
            helm.install(cluster.plane.kubeconfig, cluster.log_dir / "helm.log")
            continue
        cluster.say(f"kubectl apply --server-side -k manifests/overlays/{overlay} ({path} path)")
        cluster.apply("-k", str(ROOT / "manifests" / "overlays" / overlay))
    cluster.wait(
        "KEDA made every HPA",
        lambda: all(cluster.observer.hpa_exists(ns) for ns in NAMESPACES.values()),
        60.0,
    )
    control_plane.start_hpa_controller(cluster.procs, cluster.plane, cluster.log_dir)
    cluster.say("  HPA controller started: every HPA syncs in the same instant")
    for path, namespace in NAMESPACES.items():
        cluster.wait(
            f"{path}: 3 rating pods ready, HPA reading its metric",
            lambda ns=namespace: wired(cluster, ns),  # type: ignore[misc]
            WIRED_TIMEOUT_S,
        )


def wired(cluster: Cluster, namespace: str) -> bool:
    state = cluster.observer.path_state(namespace)
    return state.ready >= 3 and state.hpa_metric is not None


def dump(cluster: Cluster, out_dir: Path) -> list[Path]:
    """`kubectl get -o yaml` of the ScaledObjects and HPAs, one file per namespace."""
    written = []
    for path, namespace in NAMESPACES.items():
        text = cluster.kubectl("get", "scaledobjects,hpa", "-n", namespace, "-o", "yaml")
        target = out_dir / f"{path}-scaledobject-hpa.yaml"
        target.write_text(text)
        written.append(target)
    return written


def scale(cluster: Cluster, namespace: str, name: str, replicas: int) -> None:
    body = {"spec": {"replicas": replicas}}
    client.AppsV1Api(cluster.api).patch_namespaced_deployment_scale(name, namespace, body)


def endpoints_of(cluster: Cluster, namespace: str) -> Endpoints:
    """The rating-api Service's ready (address, port) pairs, from its EndpointSlices."""
    return lambda: cluster.dns.records.endpoints(namespace, "rating-api", "http")

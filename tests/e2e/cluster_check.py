"""Run inside the sandbox by tests/e2e/test_cluster.py: a real control plane and the
node (kubelet, containerd, kube-scheduler), one Deployment of `python -m http.server`
from the project's image; prints what was seen as JSON."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e.cluster import control_plane, node, sandbox
from e2e.cluster.cluster_dns import DNS_HOST, ClusterDns
from e2e.cluster.kube import api_client, as_json
from harness.group import Group, wait_for

NAME = "web"
LABELS = {"app": NAME}


def deployment() -> dict[str, Any]:
    container = {
        "name": NAME,
        "image": node.image_reference(),
        "command": ["python", "-m", "http.server", "--bind", "$(POD_IP)", "8080"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    }
    template = {"metadata": {"labels": LABELS}, "spec": {"containers": [container]}}
    spec = {"replicas": 1, "selector": {"matchLabels": LABELS}, "template": template}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME}} | {
        "spec": spec
    }


def service() -> dict[str, Any]:
    spec = {"clusterIP": "None", "selector": LABELS, "ports": [{"name": "http", "port": 8080}]}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME}, "spec": spec}


def on_lo() -> list[str]:
    shown = subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "dev", "lo"], capture_output=True, text=True
    ).stdout
    return sorted(line.split()[3] for line in shown.splitlines())


def through_relay(plane: control_plane.ControlPlane, core: client.CoreV1Api) -> str:
    """GET /readyz at the `kubernetes` Service's address, as a pod's client does."""
    address, port = node.kubernetes_service(core.api_client)
    context = plane.ssl_context()
    raw = socket.create_connection((address, port), timeout=5)
    with context.wrap_socket(raw, server_hostname=address) as tls:
        tls.sendall(f"GET /readyz HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
    return answer.decode().split("\r\n\r\n", 1)[-1]


def main(out_dir: Path) -> dict[str, Any]:
    procs = Group(one_by_one=True)
    seen: dict[str, Any] = {}
    try:
        sandbox.set_up(out_dir / "resolv.conf", DNS_HOST)
        plane = control_plane.start(procs, out_dir / "run", out_dir / "logs", 15.0)
        api = api_client(plane.kubeconfig)
        dns = ClusterDns(api).start()
        node.start(procs, plane, out_dir / "run", out_dir / "logs")
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        core.create_namespaced_service("default", service())  # type: ignore[arg-type]
        wait_for(
            "default ServiceAccount",
            lambda: core.read_namespaced_service_account("default", "default"),
            60,
            procs,
        )
        apps.create_namespaced_deployment("default", deployment())  # type: ignore[arg-type]
        wait_for("an endpoint", lambda: dns.records.endpoints("default", NAME, "http"), 90, procs)
        pod = as_json(api, core.list_namespaced_pod("default").items[0])
        seen["pod_ip"] = pod["status"]["podIP"]
        seen["on_lo"] = on_lo()
        (status,) = pod["status"]["containerStatuses"]
        seen["container"] = {key: status[key] for key in ("image", "imageID", "containerID")}
        pids = node.container_pids([status["containerID"].removeprefix("containerd://")])
        memory = [
            line.split(":", 2)[2]
            for line in Path(f"/proc/{next(iter(pids.values()))}/cgroup").read_text().splitlines()
            if line.split(":")[1] == "memory"
        ]
        seen["memory_cgroup"] = memory
        seen["node"] = node.node_info(api)
        seen["relay_readyz"] = through_relay(plane, core)
        seen["ready"] = [c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready"]
        seen["endpoints"] = dns.records.endpoints("default", NAME, "http")
        seen["dns"] = sorted(
            {a[4][0] for a in socket.getaddrinfo(f"{NAME}.default.svc.cluster.local", 8080)}
        )
        apps.delete_namespaced_deployment(NAME, "default")
        started = time.monotonic()
        wait_for("the pod gone", lambda: not core.list_namespaced_pod("default").items, 60, procs)
        seen["gone_s"] = round(time.monotonic() - started, 1)
        seen["on_lo_after"] = on_lo()
        dns.stop()
    finally:
        procs.stop_all()
        node.sweep(node.node_dir(out_dir / "run"))
    return seen


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))

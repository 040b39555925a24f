"""Run inside the sandbox by tests/e2e/test_cluster.py: a real control plane and the
node agent, one Deployment of `python -m http.server`; prints what was seen as JSON."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e import control_plane, sandbox
from e2e.cluster_dns import DNS_HOST, ClusterDns
from e2e.kube import api_client, as_json
from harness.group import Group, component, wait_for

NAME = "web"
LABELS = {"app": NAME}


def deployment() -> dict[str, Any]:
    container = {
        "name": NAME,
        "image": "unused",
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


def main(out_dir: Path) -> dict[str, Any]:
    procs = Group(one_by_one=True)
    seen: dict[str, Any] = {}
    try:
        sandbox.set_up(out_dir / "resolv.conf", DNS_HOST)
        plane = control_plane.start(procs, out_dir / "run", out_dir / "logs", 15.0)
        api = api_client(plane.kubeconfig)
        dns = ClusterDns(api).start()
        agent = [sys.executable, "-m", "e2e.node_agent", f"--kubeconfig={plane.kubeconfig}"]
        agent += [f"--log-dir={out_dir / 'pods'}", f"--state-dir={out_dir / 'state'}"]
        procs.start(component("node-agent", agent, out_dir / "logs" / "node-agent.log"))
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
        seen["ready"] = [c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready"]
        seen["endpoints"] = dns.records.endpoints("default", NAME, "http")
        seen["dns"] = sorted(
            {a[4][0] for a in socket.getaddrinfo(f"{NAME}.default.svc.cluster.local", 8080)}
        )
        apps.delete_namespaced_deployment(NAME, "default")
        started = time.monotonic()
        wait_for("the pod gone", lambda: not core.list_namespaced_pod("default").items, 60, procs)
        seen["gone_s"] = round(time.monotonic() - started, 1)
        dns.stop()
    finally:
        procs.stop_all()
    return seen


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))

"""A node agent through the official Kubernetes client: one Ready Node, a scheduler that
binds every pending pod to it, and a kubelet stand-in that runs each pod's container
(see `e2e.pod_runner`): through runc from the project's image when the pod names it,
as a process of the venv otherwise (see `e2e.containers`).

Each pod gets an address of its own, added to the loopback device of the private
network namespace the run lives in (see `e2e.sandbox`): 10.244.0.0/16 there reaches
nothing but that device. Loopback addresses (127/8) would be simpler, but the API server
refuses them in EndpointSlices, and the pods must become endpoints through the real
EndpointSlice controller.

    python -m e2e.node_agent --kubeconfig FILE --log-dir DIR --state-dir DIR [--image-key K]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import urllib3
from kubernetes import client

from e2e import build, containers, image, oci, podspec, volumes
from e2e.containers import PodImage, Process
from e2e.kube import api_client, list_and_watch
from e2e.pod_runner import PodRunner, now_rfc3339

NODE_NAME = "e2e-node"
NODE_IP = "127.0.0.1"
POD_CIDR = "10.244.0.0/16"
HEARTBEAT_S = 20.0
WATCH_TIMEOUT_S = 60
SHUTDOWN_S = 6.0


class Addresses:
    """Pod addresses from POD_CIDR, put on (and taken off) the loopback device."""

    def __init__(self, cidr: str = POD_CIDR) -> None:
        self._free = iter(ipaddress.ip_network(cidr).hosts())
        self._returned: list[str] = []
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            address = self._returned.pop(0) if self._returned else str(next(self._free))
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
        return address

    def give_back(self, address: str) -> None:
        subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], check=False)
        with self._lock:
            self._returned.append(address)


def node_body() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux"},
        },
        "spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]},
    }


def node_status(runtime: str = "local-process://1") -> dict[str, Any]:
    capacity = {"cpu": "64", "memory": "64Gi", "pods": "250"}
    now = now_rfc3339()
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady"}
    ready |= {"lastHeartbeatTime": now, "lastTransitionTime": now, "message": "e2e node agent"}
    info = {"kubeletVersion": build.KUBERNETES_VERSION, "operatingSystem": "linux"}
    info |= {"architecture": "amd64", "containerRuntimeVersion": runtime}
    for key in ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage"):
        info[key] = "e2e"
    info["kubeProxyVersion"] = ""
    return {
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [ready],
            "addresses": [
                {"type": "InternalIP", "address": NODE_IP},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            "nodeInfo": info,
        }
    }


class Agent:
    def __init__(
        self,
        core: client.CoreV1Api,
        log_dir: Path,
        state_dir: Path,
        pod_image: PodImage | str | None = None,
    ) -> None:
        """`pod_image`: the image pods of the project's repository run from, or why
        there is none (they are then refused)."""
        self.core = core
        self.pod_image = pod_image
        self.runtime = f"{oci.RUNTIME}://{oci.version().split()[-1]}"
        self.log_dir, self.state_dir = log_dir, state_dir
        # What kubelet gives every container: the API server's address.
        server = urllib.parse.urlsplit(core.api_client.configuration.host)
        self.base_env = {
            "KUBERNETES_SERVICE_HOST": str(server.hostname),
            "KUBERNETES_SERVICE_PORT": str(server.port or 443),
        }
        self.addresses = Addresses()
        self.runners: dict[str, PodRunner] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        venv_bin = Path(sys.executable).parent
        self.path_env = f"{venv_bin}:/usr/local/bin:/usr/bin:/bin"

    def register(self) -> None:
        try:
            self.core.create_node(node_body())  # type: ignore[arg-type]
        except client.ApiException as error:
            if error.status != 409:
                raise
        self.core.patch_node_status(NODE_NAME, node_status(self.runtime))

    def heartbeat(self) -> None:
        while not self.stopping.wait(HEARTBEAT_S):
            self.core.patch_node_status(NODE_NAME, node_status(self.runtime))

    def bind(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        body = client.V1Binding(
            metadata=client.V1ObjectMeta(name=meta["name"], uid=meta["uid"]),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=NODE_NAME),
        )
        try:
            self.core.create_namespaced_pod_binding(
                meta["name"], meta["namespace"], body, _preload_content=False
            )
        except client.ApiException as error:
            if error.status not in (404, 409):
                raise

    def start_pod(self, pod: Mapping[str, Any]) -> None:
        address = self.addresses.take()
        meta = pod["metadata"]
        pod_dir = self.state_dir / f"{meta['namespace']}_{meta['name']}"
        try:
            container = podspec.container_of(pod, address, NODE_IP)
            pod_image = self.image_for(container)
            rootfs = None if pod_image is None else pod_image.rootfs
            mounts = volumes.prepare(self.core, pod, pod_dir, address, NODE_IP, rootfs)
        except (podspec.Unsupported, client.ApiException) as error:
            self.addresses.give_back(address)
            print(f"refusing pod {pod['metadata']['name']}: {error}", flush=True)
            return
        log_path = self.log_dir / f"{meta['namespace']}_{meta['name']}.log"

        def make_process() -> Process:
            if pod_image is None:
                env = {"PATH": self.path_env, "HOME": "/tmp", "LANG": "C.UTF-8"}
                env |= {"HOSTNAME": meta["name"]} | self.base_env | dict(container.env)
                return containers.LocalProcess(container.argv, env, mounts, self.path_env, log_path)
            return containers.runc_container(
                pod_image,
                container,
                name=containers.container_name(meta["namespace"], meta["name"]),
                env={"HOSTNAME": meta["name"], "HOME": "/"} | self.base_env | dict(container.env),
                hostname=meta["name"],
                mounts=mounts,
                bundle=pod_dir / "bundle",
                log_path=log_path,
            )

        runner = PodRunner(
            pod,
            container,
            address,
            NODE_IP,
            self.core,
            log_path,
            make_process,
            on_gone=lambda uid: self.gone(uid, address),
        )
        self.runners[runner.uid] = runner
        runner.start()
        how = "from the venv" if pod_image is None else f"{oci.RUNTIME}, {pod_image.reference}"
        print(f"started {runner.namespace}/{runner.pod_name} on {address} ({how})", flush=True)

    def image_for(self, container: podspec.Container) -> PodImage | None:
        """The image the container runs from; None: from the venv (not the project's)."""
        if not containers.runs_project_image(container.image):
            return None
        if not isinstance(self.pod_image, PodImage):
            raise podspec.Unsupported(f"image {container.image}: {self.pod_image}")
        return self.pod_image

    def gone(self, uid: str, address: str) -> None:
        with self.lock:
            self.runners.pop(uid, None)
        self.addresses.give_back(address)

    def handle(self, kind: str, pod: Mapping[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        if kind == "DELETED" or self.stopping.is_set():
            with self.lock:
                runner = self.runners.get(meta["uid"])
            if runner is not None:
                runner.stop_now.set()
            return
        if not spec.get("nodeName"):
            if not meta.get("deletionTimestamp"):
                self.bind(pod)
            return
        if spec["nodeName"] != NODE_NAME or pod.get("status", {}).get("phase") in (
            "Succeeded",
            "Failed",
        ):
            return
        with self.lock:
            runner = self.runners.get(meta["uid"])
            if runner is None and not meta.get("deletionTimestamp"):
                self.start_pod(pod)
            elif runner is not None and meta.get("deletionTimestamp"):
                runner.deleting.set()

    def watch_pods(self) -> None:
        api, pods = self.core.api_client, self.core.list_pod_for_all_namespaces
        while not self.stopping.is_set():
            try:
                for kind, pod in list_and_watch(api, pods, WATCH_TIMEOUT_S):
                    self.handle(kind, pod)
                    if self.stopping.is_set():
                        return
            except (client.ApiException, OSError, urllib3.exceptions.HTTPError) as error:
                print(f"pod watch: {type(error).__name__}: {error}; listing again", flush=True)
                self.stopping.wait(1.0)

    def shutdown(self) -> None:
        """Stop every pod at once (SIGTERM, 2 s, SIGKILL each), within SHUTDOWN_S in all:
        the harness gives the agent 10 s before it kills it."""
        self.stopping.set()
        with self.lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.stop_now.set()
        deadline = time.monotonic() + SHUTDOWN_S
        for runner in runners:
            runner.join(timeout=max(0.0, deadline - time.monotonic()))
        left = containers.sweep_here()
        if left:
            print(f"deleted containers left behind: {', '.join(left)}", flush=True)


def load_image(key: str | None) -> PodImage | str:
    """The image built for `key` (default: these sources), or why it cannot be run."""
    key = key or image.image_key()
    try:
        return PodImage.load(key)
    except (FileNotFoundError, LookupError, ValueError) as error:
        return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.node_agent")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True, help="pods' volumes")
    parser.add_argument(
        "--image-key",
        default=os.environ.get(image.KEY_ENV),
        help="the image pods of the project run from (default: the one for these sources)",
    )
    args = parser.parse_args(argv)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    core = client.CoreV1Api(api_client(args.kubeconfig, pool_size=64))
    pod_image = load_image(args.image_key)
    agent = Agent(core, args.log_dir, args.state_dir, pod_image)
    left = containers.sweep()
    if left:
        print(f"deleted containers of an earlier run: {', '.join(left)}", flush=True)
    allocatable_m = int(podspec.quantity(node_status()["status"]["allocatable"]["cpu"]) * 1000)
    for written in containers.reserve_parent(allocatable_m):
        print(f"{written}: {written.read_text().strip()} (allocatable CPU)", flush=True)
    if isinstance(pod_image, PodImage):
        print(f"pods of {containers.REPOSITORY} run from {pod_image.reference}", flush=True)
        print(f"  ({pod_image.digest}) through {oci.version()}", flush=True)
    else:
        print(f"no image for pods of {containers.REPOSITORY}: {pod_image}", flush=True)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.register()
        threading.Thread(target=agent.heartbeat, daemon=True).start()
        print(f"node {NODE_NAME} registered, Ready; pods get addresses from {POD_CIDR}", flush=True)
        agent.watch_pods()
    finally:
        agent.shutdown()
        print("node agent stopped its pods", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

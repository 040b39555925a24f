"""The node (kubelet, containerd, kube-scheduler) against a real kube-apiserver and
kube-controller-manager: a pod from the project's image becomes Ready on its own
address on the run's `lo`, an EndpointSlice lists it, the DNS stand-in names it, the
`kubernetes` Service's address reaches the API server, and deleting its Deployment
stops the pod, removes the pod object and gives its address back.

Needs the binaries and the image `make e2e` builds, and root (namespaces); skipped
otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.cluster import build, image, node, sandbox

NEEDED = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "pause",
)
ROOT = Path(__file__).resolve().parents[2]


def skip_reason() -> str | None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare (network, mount and PID namespaces)"
    absent = [name for name in NEEDED if not build.binary(name).exists()]
    if absent:
        return f"no {', '.join(absent)} in {build.bin_dir()}: `make e2e` builds them"
    if image.read_record(image.current_key()) is None:
        return (
            "no image built for these sources: `make e2e` "
            "(or python -m e2e.cluster.image) builds it"
        )
    return None


@pytest.mark.slow
@pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
def test_a_pod_runs_becomes_an_endpoint_and_stops(tmp_path: Path) -> None:
    command = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child"]
    command += [sys.executable, "-m", "tests.e2e.cluster_check", str(tmp_path)]
    env = os.environ | {sandbox.INSIDE_ENV: "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["pod_ip"].startswith("10.244.")
    assert f"{seen['pod_ip']}/32" in seen["on_lo"]
    assert f"{seen['pod_ip']}/32" not in seen["on_lo_after"], "DEL gave the address back"
    assert seen["ready"] == ["True"]
    assert seen["container"]["image"] == node.image_reference()
    assert seen["container"]["containerID"].startswith("containerd://")
    assert seen["node"]["kubeletVersion"] == build.KUBERNETES_VERSION
    assert seen["node"]["containerRuntimeVersion"] == f"containerd://{build.CONTAINERD_VERSION[1:]}"
    assert seen["relay_readyz"] == "ok"
    parent = node.cgroup_parent(node.node_dir(tmp_path / "run"))
    (memory,) = seen["memory_cgroup"]
    assert memory.startswith(f"/{parent}/kubepods/"), "the pod's cgroup is under this run's"
    left = [str(h / parent) for h in Path("/sys/fs/cgroup").iterdir() if (h / parent).exists()]
    assert left == [], "the run's end removed its cgroups"
    assert seen["endpoints"] == [[seen["pod_ip"], 8080]]
    assert seen["dns"] == [seen["pod_ip"]]
    assert "gone_s" in seen  # the pod object went away after its process stopped

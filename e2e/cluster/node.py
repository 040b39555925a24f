"""The run's one node: a real kubelet, containerd's CRI and Debian's runc, with
kube-scheduler binding pods to it.

- containerd (`containerd.toml` below) runs pods through runc. Two settings get past
  what this host refuses: `restrict_oom_score_adj` (no process here may lower its
  oom_score_adj, and the CRI asks -998 for a sandbox) and no unprivileged-port sysctl
  (runc refuses net.* sysctls in the namespace it runs in, which pods share here).
- The pod network is `e2e.cluster.cni`: each pod's address from POD_CIDR on the run's `lo`.
- Images come from no registry. The project's image (`python -m e2e.cluster.image`) is imported
  from its OCI layout under the name the manifests use (`openclaw/rating-edge:<chart
  appVersion>`, so imagePullPolicy IfNotPresent finds it), and the sandbox image is a
  one-layer image of the pause program built here (e2e/gomod/pause).
- kubelet authenticates as system:node:e2e-node (a client certificate from the run's
  CA; the API server authorizes it with the Node authorizer), registers the Node with
  the address NODE_IP on `lo` (kubelet refuses loopback node addresses), and runs on
  cgroup v1 (`failCgroupV1: false`: this host mounts v1 controllers).
- The `kubernetes` Service's address has no kube-proxy behind it: `e2e.cluster.service_relay`
  listens there and relays to the API server, for the scaler's in-cluster client.
- The pods' cgroups sit under a parent of the run's own (`cgroup_parent`), which
  `sweep` empties and removes at the end: kubelet leaves its pods running when stopped.

containerd's sockets and state live under /run/containerd, a tmpfs mounted in the
run's own mount namespace (its shims' sockets go there whatever containerd is told),
and kubelet's files under the run directory, so nothing of the node is left on the host
when the run ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from kubernetes import client

from e2e.cluster import build, image, pki, sandbox
from e2e.cluster.cluster_dns import DNS_HOST
from e2e.cluster.control_plane import HOST, ControlPlane, free_port, kubeconfig_text
from e2e.cluster.kube import api_client, as_json, has_condition
from harness.group import Group, component, wait_for

ROOT = Path(__file__).resolve().parents[2]
NODE_NAME = "e2e-node"
NODE_IP = "10.240.0.1"
POD_CIDR = "10.244.0.0/16"
RUN_DIR = Path("/run/containerd")  # a tmpfs of the run's mount namespace
SOCKET = RUN_DIR / "containerd.sock"
RUNC_ROOT = RUN_DIR / "runc"
CRI_NAMESPACE = "k8s.io"
REPOSITORY = "docker.io/openclaw/rating-edge"
PAUSE_IMAGE = "localhost/openclaw-e2e/pause:1"
CNI_PLUGIN = "openclaw-e2e-lo"
READY_TIMEOUT_S = 90.0


def image_reference() -> str:
    """Where the manifests and the chart point: the chart's appVersion tag."""
    chart = yaml.safe_load((ROOT / "charts" / "rating-api" / "Chart.yaml").read_text())
    return f"{REPOSITORY}:{chart['appVersion']}"


@dataclass(frozen=True)
class Node:
    directory: Path
    kubeconfig: Path

    def ctr(self, *args: str) -> list[str]:
        return [str(build.binary("ctr")), "--address", str(SOCKET), "-n", CRI_NAMESPACE, *args]


def node_env() -> dict[str, str]:
    """containerd finds its runc shim, and kubelet and the shim runc and mount, on PATH."""
    return {"PATH": f"{build.bin_dir()}:/usr/sbin:/usr/bin:/sbin:/bin"}


def containerd_config(node_dir: Path) -> str:
    cni = node_dir / "cni"
    return f"""\
version = 3
root = "{node_dir / "containerd"}"
state = "{RUN_DIR / "state"}"
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{SOCKET}"
[ttrpc]
  address = "{SOCKET}.ttrpc"
[debug]
  level = "warn"

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{cni / "bin"}"]
    conf_dir = "{cni / "net.d"}"
    use_internal_loopback = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      snapshotter = "overlayfs"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{RUNC_ROOT}"
        SystemdCgroup = false

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{PAUSE_IMAGE}"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "{HOST}"
  stream_server_port = "0"
"""


def write_cni(node_dir: Path) -> None:
    cni = node_dir / "cni"
    for sub in ("bin", "net.d", "state"):
        (cni / sub).mkdir(parents=True, exist_ok=True)
    plugin = cni / "bin" / CNI_PLUGIN
    command = " ".join(sandbox.python_argv("e2e.cluster.cni", []))
    plugin.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {command}\n")
    plugin.chmod(0o755)
    network = {"type": CNI_PLUGIN, "subnet": POD_CIDR, "dataDir": str(cni / "state")}
    conflist = {"cniVersion": "1.0.0", "name": "openclaw-e2e", "plugins": [network]}
    (cni / "net.d" / "10-openclaw-e2e.conflist").write_text(json.dumps(conflist, indent=2))


def _blob(data: bytes) -> tuple[str, bytes]:
    return f"sha256:{hashlib.sha256(data).hexdigest()}", data


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    archive.addfile(info, io.BytesIO(data))


def pause_archive(out: IO[bytes], program: Path) -> None:
    """A one-layer OCI image archive of `program` as /pause, named PAUSE_IMAGE."""
    layer_buffer = io.BytesIO()
    with tarfile.open(fileobj=layer_buffer, mode="w") as layer:
        info = tarfile.TarInfo("pause")
        data = program.read_bytes()
        info.size, info.mode = len(data), 0o755
        layer.addfile(info, io.BytesIO(data))
    layer_digest, layer_bytes = _blob(layer_buffer.getvalue())
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }
    config_digest, config_bytes = _blob(json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": len(layer_bytes),
            }
        ],
    }
    manifest_digest, manifest_bytes = _blob(json.dumps(manifest).encode())
    blobs = {layer_digest: layer_bytes, config_digest: config_bytes}
    blobs[manifest_digest] = manifest_bytes
    entry = {"digest": manifest_digest, "size": len(manifest_bytes)}
    _write_archive(
        out, {}, blobs, _index(entry | {"mediaType": manifest["mediaType"]}, PAUSE_IMAGE)
    )


def _index(descriptor: dict[str, Any], name: str) -> bytes:
    annotations = {"io.containerd.image.name": name}
    annotations["org.opencontainers.image.ref.name"] = name.rsplit(":", 1)[1]
    entry = descriptor | {"annotations": annotations}
    return json.dumps({"schemaVersion": 2, "manifests": [entry]}).encode()


def _write_archive(
    out: IO[bytes], files: dict[str, Path], blobs: dict[str, bytes], index: bytes
) -> None:
    with tarfile.open(fileobj=out, mode="w|") as archive:
        _add(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(archive, "index.json", index)
        for digest, data in blobs.items():
            _add(archive, f"blobs/sha256/{digest.removeprefix('sha256:')}", data)
        for name, path in files.items():
            archive.add(str(path), arcname=name)


def layout_archive(out: IO[bytes], layout: Path, tag: str, name: str) -> str:
    """The image tagged `tag` in OCI layout `layout` as an archive naming it `name`;
    its manifest digest."""
    found = json.loads((layout / "index.json").read_text())
    for descriptor in found["manifests"]:
        if descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            break
    else:
        raise LookupError(f"no image tagged {tag} in {layout}")
    plain = {k: v for k, v in descriptor.items() if k != "annotations"}
    files = {
        f"blobs/{path.parent.name}/{path.name}": path
        for path in sorted((layout / "blobs").glob("*/*"))
    }
    _write_archive(out, files, {}, _index(plain, name))
    return str(descriptor["digest"])


def import_image(node: Node, write: Callable[[IO[bytes]], object], log: Path, what: str) -> None:
    """Stream an archive made by `write(stdin)` into `ctr images import`."""
    with log.open("ab") as sink:
        importer = subprocess.Popen(
            node.ctr("images", "import", "--snapshotter", "overlayfs", "-"),
            stdin=subprocess.PIPE,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        assert importer.stdin is not None
        try:
            write(importer.stdin)
        finally:
            importer.stdin.close()
        if importer.wait() != 0:
            raise RuntimeError(f"importing {what} into containerd failed; see {log}")


def node_pki(plane: ControlPlane, directory: Path) -> pki.Pair:
    return pki.issue(
        plane.pki.ca,
        pki.Pair(directory / "kubelet-client.crt", directory / "kubelet-client.key"),
        common_name=f"system:node:{NODE_NAME}",
        organization="system:nodes",
    )


def kubelet_config(node_dir: Path, ca: Path, port: int, healthz_port: int) -> dict[str, Any]:
    """kubelet's settings; its pods' cgroups go under `cgroup_parent(node_dir)`."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This host mounts cgroup v1 controllers; kubelet 1.35 refuses them unless told.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": True,
        "cgroupRoot": f"/{cgroup_parent(node_dir)}",
        "containerRuntimeEndpoint": f"unix://{SOCKET}",
        "address": HOST,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": HOST,
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDNS": [DNS_HOST],
        "clusterDomain": "cluster.local",
        "podLogsDir": str(node_dir / "pod-logs"),
        "volumePluginDir": str(node_dir / "volume-plugins"),
        "failSwapOn": False,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "serializeImagePulls": False,
        # A throw-away node: nothing is evicted or collected while the run goes on.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "oomScoreAdj": 0,  # kubelet's own -999 is refused here like any lowering
    }


def node_dir(run_dir: Path) -> Path:
    """Where the node of the run in `run_dir` keeps its files."""
    return run_dir / "node"


def start(procs: Group, plane: ControlPlane, run_dir: Path, log_dir: Path) -> Node:
    """containerd with both images, kubelet, kube-scheduler and the kubernetes Service's
    relay; returns once the Node is Ready."""
    node = Node(node_dir(run_dir), node_dir(run_dir) / "kubelet.kubeconfig")
    node.directory.mkdir(parents=True, exist_ok=True)
    start_containerd(procs, node, log_dir)
    import_images(node, log_dir / "ctr-import.log")
    start_kubelet(procs, plane, node, log_dir)
    start_scheduler(procs, plane, log_dir)
    api = api_client(plane.kubeconfig)
    start_service_relay(procs, api, plane, log_dir)
    wait_for(f"node {NODE_NAME} Ready (kubelet)", lambda: node_ready(api), READY_TIMEOUT_S, procs)
    return node


def start_containerd(procs: Group, node: Node, log_dir: Path) -> None:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711", "tmpfs", str(RUN_DIR)], check=True)
    write_cni(node.directory)
    config = node.directory / "containerd.toml"
    config.write_text(containerd_config(node.directory))
    argv = [str(build.binary("containerd")), f"--config={config}"]
    procs.start(component("containerd", argv, log_dir / "containerd.log", env=node_env()))
    wait_for("containerd answers", lambda: _answers(node), 30.0, procs)


def import_images(node: Node, log: Path) -> None:
    """The pause image, and the run's image (`image.current_key`, built before the run
    entered its namespaces, which have no network) under the manifests' name."""
    import_image(node, lambda out: pause_archive(out, build.binary("pause")), log, "pause")
    key = image.current_key()
    record = image.read_record(key)
    if record is None:
        raise RuntimeError(f"no image built for key {key}: run `make image` first")
    layout, tag, name = Path(record["layout"]), str(record["layout_tag"]), image_reference()
    import_image(node, lambda out: layout_archive(out, layout, tag, name), log, name)


def start_kubelet(procs: Group, plane: ControlPlane, node: Node, log_dir: Path) -> None:
    keys, ca = node_pki(plane, node.directory), plane.pki.ca.pair.cert
    node.kubeconfig.write_text(kubeconfig_text(plane.server, ca, keys.cert, keys.key))
    config = node.directory / "kubelet.yaml"
    settings = kubelet_config(node.directory, ca, free_port(), free_port())
    config.write_text(json.dumps(settings, indent=2))
    subprocess.run(["ip", "addr", "replace", f"{NODE_IP}/32", "dev", "lo"], check=True)
    make_cgroup_parent(node.directory)
    argv = [
        str(build.binary("kubelet")),
        f"--config={config}",
        f"--kubeconfig={node.kubeconfig}",
        f"--root-dir={node.directory / 'kubelet'}",
        f"--cert-dir={node.directory / 'kubelet-pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        "--v=1",
    ]
    procs.start(component("kubelet", argv, log_dir / "kubelet.log", env=node_env()))


def start_scheduler(procs: Group, plane: ControlPlane, log_dir: Path) -> None:
    kubeconfig = plane.kubeconfig  # the admin's, as the controller manager's
    argv = [str(build.binary("kube-scheduler")), f"--kubeconfig={kubeconfig}"]
    argv += [
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
    ]
    argv += [f"--bind-address={HOST}", f"--secure-port={free_port()}", "--leader-elect=false"]
    procs.start(component("kube-scheduler", [*argv, "--v=1"], log_dir / "kube-scheduler.log"))


def _answers(node: Node) -> bool:
    done = subprocess.run(node.ctr("version"), capture_output=True, check=False, timeout=10)
    return done.returncode == 0


def kubernetes_service(api: client.ApiClient) -> tuple[str, int]:
    """The `kubernetes` Service's address and port (what pods are told to dial)."""
    found = as_json(api, client.CoreV1Api(api).read_namespaced_service("kubernetes", "default"))
    return str(found["spec"]["clusterIP"]), int(found["spec"]["ports"][0]["port"])


def start_service_relay(
    procs: Group, api: client.ApiClient, plane: ControlPlane, log_dir: Path
) -> None:
    """The `kubernetes` Service's address and port, relayed to the API server."""
    address, port = kubernetes_service(api)
    subprocess.run(["ip", "addr", "replace", f"{address}/32", "dev", "lo"], check=True)
    upstream = plane.server.removeprefix("https://")
    argv = sandbox.python_argv("e2e.cluster.service_relay", [f"{address}:{port}", upstream])
    procs.start(component("service-relay", argv, log_dir / "service-relay.log", cwd=ROOT))


def node_ready(api: client.ApiClient) -> bool:
    return has_condition(as_json(api, client.CoreV1Api(api).read_node(NODE_NAME)), "Ready")


def container_pids(ids: Iterable[str]) -> dict[str, int]:
    """The host pid of each running container, by containerd's id (runc's state)."""
    pids = {}
    for container_id in ids:
        argv = ["runc", "--root", str(RUNC_ROOT / CRI_NAMESPACE), "state", container_id]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            state = json.loads(done.stdout)
            if state.get("status") == "running" and state.get("pid"):
                pids[container_id] = int(state["pid"])
    return pids


def node_info(api: client.ApiClient) -> dict[str, str]:
    """What the Node says of itself: kubelet's and the runtime's versions, and more."""
    info = as_json(api, client.CoreV1Api(api).read_node(NODE_NAME))["status"]["nodeInfo"]
    keys = ("kubeletVersion", "containerRuntimeVersion", "kernelVersion", "osImage")
    return {key: str(info.get(key, "")) for key in keys}


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_parent(node_dir: Path) -> str:
    """The cgroup this node's pods live under (kubelet's `cgroupRoot`), one per run
    directory, so that runs side by side (`make test` and `make e2e`) never see, clean
    up or sweep each other's pods."""
    return "openclaw-e2e-" + hashlib.sha256(str(node_dir.resolve()).encode()).hexdigest()[:12]


def _hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, the unified v2 one)."""
    return [path for path in sorted(CGROUP_ROOT.iterdir()) if (path / "cgroup.procs").is_file()]


def make_cgroup_parent(node_dir: Path) -> None:
    """The parent in every hierarchy (kubelet refuses a `cgroupRoot` that is missing in
    one), after what a killed run with this directory left there. cpuset's gets its
    parent's CPUs and memory nodes, or nothing could join it."""
    name = cgroup_parent(node_dir)
    sweep(node_dir)
    for hierarchy in _hierarchies():
        (hierarchy / name).mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (hierarchy / knob).is_file():
                (hierarchy / name / knob).write_text((hierarchy / knob).read_text())


def sweep(node_dir: Path, timeout_s: float = 10.0) -> int:
    """For the run's end, once kubelet and containerd are stopped: kill what still runs
    in this node's cgroups (only processes of this PID namespace are listed there) and
    remove them, deepest first, in every hierarchy. The number removed."""
    name = cgroup_parent(node_dir)
    tops = [hierarchy / name for hierarchy in _hierarchies() if (hierarchy / name).is_dir()]
    groups = sorted(
        (d for top in tops for d in [top, *top.rglob("*")] if d.is_dir()),
        key=lambda d: len(d.parts),
        reverse=True,
    )
    deadline = time.monotonic() + timeout_s
    removed = 0
    for group in groups:
        while _kill_all(group) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            group.rmdir()
            removed += 1
        except OSError:
            continue  # still busy, or gone already
    return removed


def _kill_all(group: Path) -> bool:
    """SIGKILL every process listed in `group`; whether any was listed."""
    try:
        pids = [int(line) for line in (group / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return False
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return bool(pids)

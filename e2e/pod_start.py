"""How long the manifests' rating-api pod takes from start to its first /readyz 200, run
as the node agent runs it: through runc from the image, and from the venv, taking turns
on this machine. Prints each run and the medians (root; the image built first).

    python -m e2e.pod_start [--runs N] [--burst K] [--parent-cpu MILLICORES]

With `--burst K`, each turn starts K pods at once (as a scale-up does: 13 pods per
fleet, 26 at once in make e2e) and times the last of them to be ready.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from e2e import containers, image, podspec, volumes
from e2e.cluster import KUBECTL, ROOT
from harness.ready import http_ok

HOST = "127.0.0.1"
TIMEOUT_S = 60.0
PORT_RANGE = (20000, 30000)


def overlay_pod(deployment: str, *, name: str, namespace: str, uid: str) -> dict[str, Any]:
    """The pod the e2e overlay's Deployment `deployment` makes (kustomize render), as
    the node agent gets it once bound."""
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / "manifests" / "overlays" / "e2e")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (found,) = [
        d
        for d in yaml.safe_load_all(out)
        if d and d["kind"] == "Deployment" and d["metadata"]["name"] == deployment
    ]
    meta = {"name": name, "namespace": namespace, "uid": uid}
    return {"metadata": meta, "spec": found["spec"]["template"]["spec"] | {"nodeName": "e2e-node"}}


def with_env(pod: dict[str, Any], **values: str) -> dict[str, Any]:
    """`pod` with its one container's env `values` set, over what it had."""
    (container,) = pod["spec"]["containers"]
    env = [e for e in container["env"] if e["name"] not in values]
    container["env"] = env + [{"name": k, "value": v} for k, v in values.items()]
    return pod


def manifest_pod(http_port: int, admin_port: int) -> dict[str, Any]:
    """The e2e overlay's rating-api pod on loopback ports of its own."""
    pod = overlay_pod("rating-api", name="rating-api-start", namespace="bench", uid="u")
    return with_env(pod, RATING_API_PORT=str(http_port), RATING_API_ADMIN_PORT=str(admin_port))


def two_ports(taken: set[int]) -> tuple[int, int]:
    """Two free ports below the ephemeral range (where the machine's own outgoing
    connections cannot take them meanwhile), neither in `taken`."""
    ports: list[int] = []
    while len(ports) < 2:
        port = random.randrange(*PORT_RANGE)
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        taken.add(port)
        ports.append(port)
    return ports[0], ports[1]


def make(
    how: str, pod_image: containers.PodImage, work: Path, taken: set[int]
) -> tuple[Any, str, Path]:
    """One pod's container (`how` = "runc" or "venv"), its /readyz URL and its log."""
    http_port, admin_port = two_ports(taken)
    pod = manifest_pod(http_port, admin_port)
    container = podspec.container_of(pod, HOST, HOST)
    rootfs = pod_image.rootfs if how == "runc" else None
    mounts = volumes.prepare(None, pod, work, HOST, HOST, rootfs)  # type: ignore[arg-type]
    log = work / f"{how}.log"
    env = {"HOSTNAME": "rating-api-start", "HOME": "/tmp", "LANG": "C.UTF-8"} | dict(container.env)
    process: containers.Process
    if how == "runc":
        name = containers.container_name("bench", f"start-{time.monotonic_ns()}")
        process = containers.runc_container(
            pod_image,
            container,
            name=name,
            env=env,
            hostname="rating-api-start",
            mounts=mounts,
            bundle=work / "bundle",
            log_path=log,
        )
    else:
        path_env = f"{Path(sys.executable).parent}:/usr/bin:/bin"
        process = containers.LocalProcess(
            container.argv, env | {"PATH": path_env}, mounts, path_env, log
        )
    return process, f"http://{HOST}:{http_port}/readyz", log


def burst_start(how: str, pod_image: containers.PodImage, root: Path, count: int) -> float:
    """Seconds from starting `count` pods at once until the last answers /readyz."""
    made, taken = [], set[int]()
    for index in range(count):
        work = root / f"{how}-{index}"
        work.mkdir()
        made.append(make(how, pod_image, work, taken))
    started = time.monotonic()
    for process, _, _ in made:
        process.start()
    waiting = list(made)
    try:
        while waiting:
            for entry in list(waiting):
                process, url, log = entry
                if http_ok(url):
                    waiting.remove(entry)
                elif process.poll() is not None or time.monotonic() - started > TIMEOUT_S:
                    raise RuntimeError(f"{how}: no answer from {url}: {log.read_text()[-2000:]}")
            time.sleep(0.01)
        return time.monotonic() - started
    finally:
        for process, _, _ in made:
            process.remove()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.pod_start", description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="starts of each, taking turns")
    parser.add_argument("--burst", type=int, default=1, help="pods started at once per turn")
    parser.add_argument(
        "--parent-cpu",
        type=int,
        default=64000,
        help="the containers' parent cgroup's CPU, millicores (the node agent: the Node's "
        "64 cores; 1000 is the cgroup default of 1024 shares)",
    )
    args = parser.parse_args(argv)
    containers.reserve_parent(args.parent_cpu)
    pod_image = containers.PodImage.load(image.current_key())
    times: dict[str, list[float]] = {"runc": [], "venv": []}
    for run in range(args.runs):
        for how in ("runc", "venv") if run % 2 == 0 else ("venv", "runc"):
            work = Path(tempfile.mkdtemp(prefix=f"pod-start-{how}-"))
            try:
                times[how].append(burst_start(how, pod_image, work, args.burst))
            finally:
                shutil.rmtree(work, ignore_errors=True)
            print(f"run {run + 1} {how}: {times[how][-1]:.3f} s", flush=True)
    medians = {how: statistics.median(values) for how, values in times.items()}
    result = {
        "runs": args.runs,
        "burst": args.burst,
        "parent_cpu_m": args.parent_cpu,
        "median_s": {how: round(value, 3) for how, value in medians.items()},
        "runc_over_venv": round(medians["runc"] / medians["venv"], 3),
        "image": pod_image.reference,
        "all_s": {how: [round(v, 3) for v in values] for how, values in times.items()},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

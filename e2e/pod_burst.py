"""How long the node takes to start many rating-api pods at once, alone: the control
plane and the node as `make e2e` runs them (no KEDA, no load), the e2e overlay's
rating-api Deployment (its probes, resources and security context), scaled from 0 to
`--pods` in one step, `--rounds` times. Prints each round (seconds from the scale to
each pod's container running, and to each pod Ready: median and last) as JSON, then the
medians over the rounds. Root; build the image first (`make image`).

    python -m e2e.pod_burst [--pods 26] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from e2e.cluster import control_plane, image, node, sandbox
from e2e.cluster.cluster_dns import DNS_HOST
from e2e.cluster.kube import api_client, list_and_watch
from e2e.cluster.up import KUBECTL, ROOT
from harness.group import Group, wait_for

NAMESPACE = "default"
ROUND_TIMEOUT_S = 180.0


def overlay_deployment() -> dict[str, Any]:
    """The e2e overlay's rating-api Deployment at 0 replicas, in NAMESPACE (under its
    default service account; the pod mounts no token)."""
    rendered = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / "manifests" / "overlays" / "e2e")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (found,) = [
        doc
        for doc in yaml.safe_load_all(rendered)
        if doc and doc["kind"] == "Deployment" and doc["metadata"]["name"] == "rating-api"
    ]
    found["metadata"] = {"name": "rating-api", "namespace": NAMESPACE}
    found["spec"]["replicas"] = 0
    found["spec"]["template"]["spec"].pop("serviceAccountName", None)
    return dict(found)


def one_round(api: client.ApiClient, pods: int) -> dict[str, float]:
    """Scale to `pods` and time each pod's transitions from a watch, which costs the
    machine next to nothing while the node works (a list every 0.1 s took about 8 % of
    its CPU)."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    list_pods = functools.partial(core.list_namespaced_pod, NAMESPACE)
    started = time.monotonic()
    apps.patch_namespaced_deployment_scale("rating-api", NAMESPACE, {"spec": {"replicas": pods}})
    running: dict[str, float] = {}
    ready: dict[str, float] = {}
    while len(ready) < pods:
        remaining_s = ROUND_TIMEOUT_S - (time.monotonic() - started)
        if remaining_s <= 0:
            raise TimeoutError(f"{len(ready)} of {pods} pods Ready after {ROUND_TIMEOUT_S:g} s")
        events = list_and_watch(api, list_pods, max(1, int(remaining_s)))
        with contextlib.closing(events):
            for _, pod in events:
                elapsed = time.monotonic() - started
                name = pod["metadata"]["name"]
                for status in pod.get("status", {}).get("containerStatuses") or []:
                    if "running" in (status.get("state") or {}):
                        running.setdefault(name, elapsed)
                    if status.get("ready"):
                        ready.setdefault(name, elapsed)
                if len(ready) >= pods:
                    break
    apps.patch_namespaced_deployment_scale("rating-api", NAMESPACE, {"spec": {"replicas": 0}})
    return {
        "running_median_s": round(statistics.median(running.values()), 2),
        "running_last_s": round(max(running.values()), 2),
        "ready_median_s": round(statistics.median(ready.values()), 2),
        "ready_last_s": round(max(ready.values()), 2),
    }


def run_inside(out_dir: Path, pods: int, rounds: int) -> int:
    procs = Group(one_by_one=True)
    run_dir = out_dir / "run"
    try:
        sandbox.set_up(out_dir / "resolv.conf", DNS_HOST)
        plane = control_plane.start(procs, run_dir, out_dir / "logs", 15.0)
        api = api_client(plane.kubeconfig)
        node.start(procs, plane, run_dir, out_dir / "logs")
        core = client.CoreV1Api(api)
        wait_for(
            "the default ServiceAccount",
            lambda: core.read_namespaced_service_account("default", NAMESPACE),
            60,
            procs,
        )
        apps = client.AppsV1Api(api)
        apps.create_namespaced_deployment(NAMESPACE, overlay_deployment())  # type: ignore[arg-type]
        results = []
        for number in range(rounds):
            result = {"round": number + 1, "pods": pods} | one_round(api, pods)
            print(json.dumps(result), flush=True)
            results.append(result)
            wait_for(
                "every pod gone", lambda: not core.list_namespaced_pod(NAMESPACE).items, 120, procs
            )
        keys = ("running_median_s", "running_last_s", "ready_median_s", "ready_last_s")
        medians = {key: round(statistics.median(r[key] for r in results), 2) for key in keys}
        print(json.dumps({"rounds": rounds, "pods": pods, "medians": medians}), flush=True)
        return 0
    finally:
        procs.stop_all()
        node.sweep(node.node_dir(run_dir))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.pod_burst", description=__doc__)
    parser.add_argument("--pods", type=int, default=26, help="pods started at once (26)")
    parser.add_argument("--rounds", type=int, default=3, help="bursts, one after another (3)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "pod-burst")
    args = parser.parse_args(argv)
    if args.pods < 1 or args.rounds < 1:
        parser.error("--pods and --rounds must be at least 1")
    if sandbox.inside():
        return run_inside(args.out, args.pods, args.rounds)
    record = image.read_record(image.current_key())
    if record is None:
        raise SystemExit("no image built for these sources: run `make image` first")
    os.environ[image.KEY_ENV] = record["key"]  # the run imports this one, whatever changes
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    forwarded = [f"--pods={args.pods}", f"--rounds={args.rounds}", f"--out={args.out}"]
    sandbox.exec_inside(sandbox.python_argv("e2e.pod_burst", forwarded))


if __name__ == "__main__":
    sys.exit(main())

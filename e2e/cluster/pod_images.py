"""What summary.json says of the image the pods ran from: its reference, the digest of
its OCI manifest (read from the layout, not from the build's record), the runtime and
its version, what each fleet's pods report in their container statuses (kubelet's
`image` and `imageID`), and the CPU and memory limits read from one running
container's cgroup files per Deployment and fleet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e.cluster import image, node, oci
from e2e.cluster.kube import as_json

Json = Mapping[str, Any]


def image_keys(key: str) -> dict[str, Any]:
    """The image built for `key`: reference, manifest digest, layout, runtime."""
    record = image.read_record(key)
    if record is None:
        return {"key": key, "error": "no image built for this key", "runtime": oci.version()}
    layout = Path(record["layout"])
    return {
        "reference": record["image"],
        "imported_as": node.image_reference(),
        "digest": oci.manifest_digest(layout, record["layout_tag"]),
        "image_id": record["image_id"],
        "key": key,
        "layout": f"{layout}:{record['layout_tag']}",
        "runtime": oci.version(),
    }


def reported(pods: Iterable[Json]) -> dict[str, list[str]]:
    """Per container name, the distinct `image@imageID` its pods' statuses report."""
    seen: dict[str, set[str]] = {}
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            ref = f"{status.get('image', '')}@{status.get('imageID', '')}"
            seen.setdefault(status["name"], set()).add(ref)
    return {name: sorted(refs) for name, refs in sorted(seen.items())}


def cgroup_sample(pods: Iterable[Json]) -> dict[str, dict[str, str]]:
    """The cgroup limits of the first running container of each Deployment (by the
    pod name less its two generated parts) among `pods`, by pod name."""
    sample: dict[str, dict[str, str]] = {}
    taken: set[str] = set()
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        name = str(pod["metadata"]["name"])
        deployment = name.rsplit("-", 2)[0]
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        ids = [
            str(s["containerID"]).removeprefix("containerd://")
            for s in statuses
            if "running" in (s.get("state") or {}) and s.get("containerID")
        ]
        if deployment in taken or not ids:
            continue
        pids = node.container_pids(ids[:1])
        if not pids:
            continue
        try:
            sample[name] = oci.cgroup_limits(next(iter(pids.values())))
        except OSError:
            continue  # it stopped meanwhile
        taken.add(deployment)
    return sample


def image_summary(
    api: client.ApiClient, namespaces: Mapping[str, str], key: str | None = None
) -> dict[str, Any]:
    """summary.json's `image` key, read while the fleets run (`key`: the run's image)."""
    key = key or image.current_key()
    core = client.CoreV1Api(api)
    fleets = {}
    for fleet, namespace in namespaces.items():
        pods = as_json(api, core.list_namespaced_pod(namespace)).get("items") or []
        fleets[fleet] = {"pods": reported(pods), "cgroup_limits": cgroup_sample(pods)}
    return image_keys(key) | {"node": node.node_info(api), "fleets": fleets}


def image_problems(summary: Json) -> list[str]:
    """Reasons the pods did not run the image built for this run (empty when they did):
    each container's status must report the imported name and the built image's id."""
    if "error" in summary:
        return [f"image: {summary['error']}"]
    wanted = f"{summary['imported_as']}@{summary['image_id']}"
    problems = []
    for fleet, seen in summary["fleets"].items():
        for container, refs in seen["pods"].items():
            if refs != [wanted]:
                problems.append(f"{fleet}: {container} ran {refs}, not {wanted}")
        if not seen["cgroup_limits"]:
            problems.append(f"{fleet}: no running container's cgroup limits could be read")
    return problems

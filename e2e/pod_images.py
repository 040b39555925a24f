"""What summary.json says of the image the pods ran from: its reference, the digest of
its OCI manifest (read from the layout, not from the build's record), the runtime and
its version, what each fleet's pods report in their container statuses, and the CPU
and memory limits read from one running container's cgroup files per fleet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e import containers, image, oci
from e2e.kube import as_json

Json = Mapping[str, Any]


def image_keys(key: str) -> dict[str, Any]:
    """The image built for `key`: reference, manifest digest, layout, runtime."""
    record = image.read_record(key)
    if record is None:
        return {"key": key, "error": "no image built for this key", "runtime": oci.version()}
    layout = Path(record["layout"])
    return {
        "reference": record["image"],
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


def cgroup_sample(namespace: str) -> dict[str, dict[str, str]]:
    """The cgroup limits of the first running container of each Deployment (by the
    pod name less its two generated parts) in `namespace`, by container id."""
    prefix = containers.container_name(namespace, "")
    sample: dict[str, dict[str, str]] = {}
    taken: set[str] = set()
    for listed in sorted(oci.listed(), key=lambda c: str(c.get("id"))):
        name = str(listed.get("id", ""))
        deployment = name.removeprefix(prefix).rsplit("-", 2)[0]
        if not name.startswith(prefix) or listed.get("status") != "running":
            continue
        if deployment in taken or not listed.get("pid"):
            continue
        try:
            sample[name] = oci.cgroup_limits(int(listed["pid"]))
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
        fleets[fleet] = {"pods": reported(pods), "cgroup_limits": cgroup_sample(namespace)}
    return image_keys(key) | {"fleets": fleets}

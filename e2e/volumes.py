"""A pod's volumes, as kubelet would give them to its container.

`emptyDir` is an empty directory anyone may write (as kubelet makes it); `projected` is
written from its sources (a bound service-account token from the TokenRequest API,
ConfigMap keys, downward-API fields), which covers the `kube-api-access-*` volume that
the ServiceAccount admission plugin adds when a pod mounts its token; `secret` and
`configMap` volumes hold their keys. Other volume types are refused. All but
`emptyDir` are mounted read-only, as kubelet mounts them.

A container run from an image gets each volume bind-mounted at its mountPath by the
runtime (`e2e.oci`). A container run from the venv runs in a mount namespace of its own
(`unshare --mount`, `wrap`) where the same binds are made. Mount paths must exist
already (in the image's rootfs, or on the machine for the venv) or lie under /run (a
fresh tmpfs there), so nothing is created on the machine's own filesystem or the image.
"""

from __future__ import annotations

import base64
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e import podspec

Json = Mapping[str, Any]
RUN = Path("/run")
# Where the pods' programs come from: an emptyDir mounted over one of these would hide
# them (a checkout under /tmp, with the manifests' emptyDir at /tmp).
NEEDED = (Path(__file__).resolve().parent.parent, Path(sys.prefix).resolve())
TOKEN_EXPIRY_S = 3607  # what the ServiceAccount admission plugin asks for


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = False


def _inside_run(target: str) -> bool:
    """Under /run (or /var/run, its link in Debian and in the image)."""
    resolved = Path(target.replace("/var/run/", "/run/", 1))
    return resolved == RUN or RUN in resolved.parents


def hides_programs(target: str) -> bool:
    covered = Path(target).resolve()
    return any(path == covered or covered in path.parents for path in NEEDED)


def token(core: client.CoreV1Api, pod: Json, source: Json) -> str:
    meta = pod["metadata"]
    spec = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(
            audiences=[source["audience"]] if source.get("audience") else [],
            expiration_seconds=int(source.get("expirationSeconds", TOKEN_EXPIRY_S)),
            bound_object_ref=client.V1BoundObjectReference(
                api_version="v1", kind="Pod", name=meta["name"], uid=meta["uid"]
            ),
        )
    )
    account = pod["spec"].get("serviceAccountName") or "default"
    answer = core.create_namespaced_service_account_token(account, meta["namespace"], spec)
    if answer.status is None:
        raise podspec.Unsupported(f"no token for service account {account}")
    return str(answer.status.token)


def config_map_files(core: client.CoreV1Api, namespace: str, source: Json) -> dict[str, str]:
    data = core.read_namespaced_config_map(source["name"], namespace).data or {}
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    return {item["path"]: data[item["key"]] for item in items}


def secret_files(core: client.CoreV1Api, namespace: str, source: Json) -> dict[str, bytes]:
    data = core.read_namespaced_secret(source["secretName"], namespace).data or {}
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    return {item["path"]: base64.b64decode(data[item["key"]]) for item in items}


def projected_files(
    core: client.CoreV1Api, pod: Json, volume: Json, pod_ip: str, node_ip: str
) -> dict[str, str]:
    files: dict[str, str] = {}
    for source in volume["projected"].get("sources") or []:
        if "serviceAccountToken" in source:
            files[source["serviceAccountToken"]["path"]] = token(
                core, pod, source["serviceAccountToken"]
            )
        elif "configMap" in source:
            namespace = pod["metadata"]["namespace"]
            files |= config_map_files(core, namespace, source["configMap"])
        elif "downwardAPI" in source:
            for item in source["downwardAPI"].get("items") or []:
                path = item["fieldRef"]["fieldPath"]
                files[item["path"]] = podspec.field_value(path, pod, pod_ip, node_ip)
        else:
            raise podspec.Unsupported(f"projected source {sorted(source)}")
    return files


def volume_files(
    core: client.CoreV1Api, pod: Json, volume: Json, pod_ip: str, node_ip: str
) -> dict[str, bytes]:
    """The files of a volume other than emptyDir, by path inside it."""
    namespace = pod["metadata"]["namespace"]
    if "projected" in volume:
        files = projected_files(core, pod, volume, pod_ip, node_ip)
        return {name: text.encode() for name, text in files.items()}
    if "secret" in volume:
        return secret_files(core, namespace, volume["secret"])
    if "configMap" in volume:
        files = config_map_files(core, namespace, volume["configMap"])
        return {name: text.encode() for name, text in files.items()}
    raise podspec.Unsupported(f"volume {volume['name']}: {sorted(volume)}")


def _exists(target: str, rootfs: Path | None) -> bool:
    if rootfs is None:
        return Path(target).is_dir()
    return (rootfs / target.lstrip("/")).is_dir()


def prepare(
    core: client.CoreV1Api,
    pod: Json,
    pod_dir: Path,
    pod_ip: str,
    node_ip: str,
    rootfs: Path | None = None,
) -> list[Mount]:
    """Write the container's volumes under `pod_dir`; the mounts to make. `rootfs`: the
    image the container runs from (None: the machine's own filesystem, the venv)."""
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    mounts = []
    for wanted in pod["spec"]["containers"][0].get("volumeMounts") or []:
        volume, target = volumes[wanted["name"]], wanted["mountPath"]
        if not (_inside_run(target) or _exists(target, rootfs)):
            raise podspec.Unsupported(f"mountPath {target}: outside /run and not a directory")
        source = pod_dir / "volumes" / wanted["name"]
        source.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            source.chmod(0o1777 if target == "/tmp" else 0o777)  # any user may write
            if rootfs is None and hides_programs(target):
                continue  # scratch space only: the container uses the machine's directory
            mounts.append(Mount(source, target))
            continue
        for name, data in volume_files(core, pod, volume, pod_ip, node_ip).items():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes(data)
            (source / name).chmod(0o644)
        mounts.append(Mount(source, target, read_only=True))
    return mounts


def wrap(argv: Sequence[str], mounts: Sequence[Mount]) -> list[str]:
    """`argv` run in its own mount namespace with `mounts` in place."""
    if not mounts:
        return list(argv)
    # Every source is bound under the fresh /run first, then each goes to its target:
    # a volume mounted at /tmp must not hide another volume's source below /tmp.
    steps = ["mount -t tmpfs -o mode=755 pod-run /run"]
    for index, mount in enumerate(mounts):
        staged = f"/run/.volumes/{index}"
        steps.append(f"mkdir -p {staged} && mount --bind {shlex.quote(str(mount.source))} {staged}")
    for index, mount in enumerate(mounts):
        target = shlex.quote(mount.target)
        steps.append(f"mkdir -p {target} && mount --bind /run/.volumes/{index} {target}")
    script = " && ".join(steps) + ' && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "pod", *argv]

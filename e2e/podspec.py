"""What a kubelet reads from a pod's spec, as plain values: the command line with its
environment, named ports, probes, the preStop hook, the image, the security context and
the resources. Pure: no API calls, no processes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Json = Mapping[str, Any]
ProbeKind = Literal["httpGet", "grpc", "tcpSocket"]
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m|k|Ki|M|Mi|G|Gi|T|Ti|e[0-9]+)?$")
_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


class Unsupported(ValueError):
    """The spec asks for something this node agent does not do; the text says what."""


@dataclass(frozen=True)
class Probe:
    kind: ProbeKind
    port: int
    path: str = "/"
    service: str = ""
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1


@dataclass(frozen=True)
class Resources:
    """A container's `resources`: CPU in millicores, memory in bytes (None: not set)."""

    cpu_request_m: int | None = None
    cpu_limit_m: int | None = None
    memory_request_bytes: int | None = None
    memory_limit_bytes: int | None = None


@dataclass(frozen=True)
class Security:
    """The container's effective securityContext (its own fields over the pod's)."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    read_only_root: bool = False
    allow_privilege_escalation: bool = True
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Container:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    readiness: Probe | None
    liveness: Probe | None
    startup: Probe | None
    pre_stop_sleep_s: float
    run_as_user: int | None
    run_as_group: int | None
    image: str = ""
    security: Security = Security()
    resources: Resources = Resources()


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, unknown ones kept,
    `$$` is a literal `$`."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR.sub(one, text)


def field_value(path: str, pod: Json, pod_ip: str, node_ip: str) -> str:
    """The downward API's fieldRef values this agent knows."""
    meta, spec = pod["metadata"], pod["spec"]
    values = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": node_ip,
        "status.hostIPs": node_ip,
    }
    if path not in values:
        raise Unsupported(f"fieldRef {path!r}")
    return str(values[path])


def container_env(container: Json, pod: Json, pod_ip: str, node_ip: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "valueFrom" in item:
            source = item["valueFrom"]
            if "fieldRef" not in source:
                raise Unsupported(f"env {item['name']}: only valueFrom.fieldRef")
            env[item["name"]] = field_value(source["fieldRef"]["fieldPath"], pod, pod_ip, node_ip)
        else:
            env[item["name"]] = expand(str(item.get("value", "")), env)
    return env


def port_number(port: int | str, container: Json) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise Unsupported(f"container {container['name']}: no port named {port!r}")


def _probe(kind: ProbeKind, port: int, spec: Json, *, path: str = "/", service: str = "") -> Probe:
    return Probe(
        kind,
        port,
        path=path,
        service=service,
        initial_delay_s=float(spec.get("initialDelaySeconds", 0)),
        period_s=float(spec.get("periodSeconds", 10)),
        timeout_s=float(spec.get("timeoutSeconds", 1)),
        failure_threshold=int(spec.get("failureThreshold", 3)),
        success_threshold=int(spec.get("successThreshold", 1)),
    )


def probe(spec: Json | None, container: Json) -> Probe | None:
    if not spec:
        return None
    if "httpGet" in spec:
        action = spec["httpGet"]
        port = port_number(action["port"], container)
        return _probe("httpGet", port, spec, path=action.get("path", "/"))
    if "grpc" in spec:
        action = spec["grpc"]
        port = port_number(action["port"], container)
        return _probe("grpc", port, spec, service=action.get("service") or "")
    if "tcpSocket" in spec:
        return _probe("tcpSocket", port_number(spec["tcpSocket"]["port"], container), spec)
    raise Unsupported(f"container {container['name']}: probe {sorted(spec)}")


def pre_stop_sleep_s(container: Json) -> float:
    hook = (container.get("lifecycle") or {}).get("preStop")
    if not hook:
        return 0.0
    if "sleep" not in hook:
        raise Unsupported(f"container {container['name']}: preStop {sorted(hook)}")
    return float(hook["sleep"]["seconds"])


def security_ids(pod: Json, container: Json) -> tuple[int | None, int | None]:
    pod_context = pod["spec"].get("securityContext") or {}
    own = container.get("securityContext") or {}
    user = own.get("runAsUser", pod_context.get("runAsUser"))
    group = own.get("runAsGroup", pod_context.get("runAsGroup"))
    return (None if user is None else int(user), None if group is None else int(group))


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity (`250m`, `1`, `0.5`, `256Mi`, `1G`, `1e3`) as a number."""
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise Unsupported(f"quantity {value!r}")
    number, suffix = match.group(1), match.group(2) or ""
    scale = 10 ** int(suffix[1:]) if suffix.startswith("e") else _SUFFIX[suffix]
    return float(number) * scale


def resources_of(container: Json) -> Resources:
    spec = container.get("resources") or {}
    requests, limits = spec.get("requests") or {}, spec.get("limits") or {}

    def millicores(values: Json) -> int | None:
        return None if "cpu" not in values else math.ceil(quantity(values["cpu"]) * 1000 - 1e-9)

    def in_bytes(values: Json) -> int | None:
        return None if "memory" not in values else math.ceil(quantity(values["memory"]) - 1e-9)

    return Resources(millicores(requests), millicores(limits), in_bytes(requests), in_bytes(limits))


def security_of(pod: Json, container: Json) -> Security:
    own = container.get("securityContext") or {}
    capabilities = own.get("capabilities") or {}
    user, group = security_ids(pod, container)
    return Security(
        run_as_user=user,
        run_as_group=group,
        read_only_root=bool(own.get("readOnlyRootFilesystem", False)),
        allow_privilege_escalation=bool(own.get("allowPrivilegeEscalation", True)),
        capabilities_add=tuple(capabilities.get("add") or ()),
        capabilities_drop=tuple(capabilities.get("drop") or ()),
    )


def container_of(pod: Json, pod_ip: str, node_ip: str) -> Container:
    """The pod's one container, ready to run. More than one is refused."""
    containers: Sequence[Json] = pod["spec"]["containers"]
    if len(containers) != 1 or pod["spec"].get("initContainers"):
        raise Unsupported("pods with exactly one container and no init containers")
    container = containers[0]
    env = container_env(container, pod, pod_ip, node_ip)
    words = [*(container.get("command") or []), *(container.get("args") or [])]
    if not words:
        raise Unsupported(f"container {container['name']}: no command (images are not run)")
    user, group = security_ids(pod, container)
    return Container(
        name=container["name"],
        argv=tuple(expand(word, env) for word in words),
        env=env,
        readiness=probe(container.get("readinessProbe"), container),
        liveness=probe(container.get("livenessProbe"), container),
        startup=probe(container.get("startupProbe"), container),
        pre_stop_sleep_s=pre_stop_sleep_s(container),
        run_as_user=user,
        run_as_group=group,
        image=str(container.get("image") or ""),
        security=security_of(pod, container),
        resources=resources_of(container),
    )

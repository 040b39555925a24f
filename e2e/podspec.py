"""What a kubelet reads from a pod's spec, as plain values: the command line with its
environment, named ports, probes and the preStop hook. Pure: no API calls, no processes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Json = Mapping[str, Any]
ProbeKind = Literal["httpGet", "grpc", "tcpSocket"]
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


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
    )

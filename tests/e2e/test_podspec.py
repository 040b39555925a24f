"""What the node agent reads from a pod spec: commands, env, ports, probes, hooks."""

from __future__ import annotations

from typing import Any

import pytest

from e2e import podspec

POD_IP, NODE_IP = "10.244.0.7", "127.0.0.1"


def pod(**container: Any) -> dict[str, Any]:
    base = {
        "name": "app",
        "command": ["rating-api"],
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    return {
        "metadata": {"name": "p-1", "namespace": "ns", "uid": "u-1"},
        "spec": {"nodeName": "n", "containers": [base | container]},
    }


def test_env_resolves_values_field_refs_and_expansion() -> None:
    env = [
        {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "URL", "value": "http://$(HOST):8080/$(MISSING)/$$"},
    ]
    container = podspec.container_of(pod(env=env, args=["--host", "$(HOST)"]), POD_IP, NODE_IP)
    assert container.env == {
        "HOST": POD_IP,
        "POD": "p-1",
        "URL": f"http://{POD_IP}:8080/$(MISSING)/$",
    }
    assert container.argv == ("rating-api", "--host", POD_IP)


@pytest.mark.parametrize(
    ("spec", "kind", "port"),
    [
        ({"httpGet": {"path": "/readyz", "port": "http"}}, "httpGet", 8080),
        ({"grpc": {"port": 6000, "service": "readiness"}}, "grpc", 6000),
        ({"tcpSocket": {"port": "8080"}}, "tcpSocket", 8080),
    ],
    ids=["http-named-port", "grpc", "tcp-numeric-string"],
)
def test_probes(spec: dict[str, Any], kind: str, port: int) -> None:
    probe = podspec.container_of(
        pod(readinessProbe=spec | {"periodSeconds": 5}), POD_IP, NODE_IP
    ).readiness
    assert probe is not None
    assert (probe.kind, probe.port, probe.period_s, probe.failure_threshold) == (kind, port, 5.0, 3)


@pytest.mark.parametrize(
    "change",
    [
        {"command": None},
        {"readinessProbe": {"exec": {"command": ["true"]}}},
        {"readinessProbe": {"httpGet": {"port": "nope"}}},
        {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
        {"lifecycle": {"preStop": {"exec": {"command": ["true"]}}}},
    ],
    ids=["no-command", "exec-probe", "unknown-port", "secret-env", "exec-hook"],
)
def test_unsupported_is_refused_with_a_reason(change: dict[str, Any]) -> None:
    with pytest.raises(podspec.Unsupported):
        podspec.container_of(pod(**change), POD_IP, NODE_IP)


def test_pre_stop_sleep_and_security_ids() -> None:
    spec = pod(lifecycle={"preStop": {"sleep": {"seconds": 5}}}, securityContext={"runAsUser": 7})
    spec["spec"]["securityContext"] = {"runAsUser": 1, "runAsGroup": 2}
    container = podspec.container_of(spec, POD_IP, NODE_IP)
    assert (container.pre_stop_sleep_s, container.run_as_user, container.run_as_group) == (
        5.0,
        7,
        2,
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("250m", 0.25), ("1", 1.0), ("0.5", 0.5), ("256Mi", 256 * 2**20), ("1G", 1e9), ("1e3", 1e3)],
)
def test_quantities(text: str, value: float) -> None:
    assert podspec.quantity(text) == value


@pytest.mark.parametrize("text", ["", "1x", "-1", "Mi"])
def test_bad_quantities_are_refused(text: str) -> None:
    with pytest.raises(podspec.Unsupported, match="quantity"):
        podspec.quantity(text)


def test_resources_image_and_security_context() -> None:
    resources = {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "1"}}
    security = {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsUser": 10001,
    }
    spec = pod(image="openclaw/rating-edge:0.1.0", resources=resources, securityContext=security)
    container = podspec.container_of(spec, POD_IP, NODE_IP)
    assert container.image == "openclaw/rating-edge:0.1.0"
    assert container.resources == podspec.Resources(250, 1000, 128 * 2**20, None)
    assert container.security == podspec.Security(
        run_as_user=10001,
        read_only_root=True,
        allow_privilege_escalation=False,
        capabilities_drop=("ALL",),
    )


def test_no_security_context_is_kubernetes_defaults() -> None:
    container = podspec.container_of(pod(), POD_IP, NODE_IP)
    assert container.security == podspec.Security()
    assert container.security.allow_privilege_escalation is True
    assert container.resources == podspec.Resources()

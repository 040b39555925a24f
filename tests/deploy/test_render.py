"""The kustomizations render, and what they render is what the issue asks for."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from tests.deploy.kube import (
    ACTIVATOR,
    BASE,
    OVERLAYS,
    PRODUCTION,
    STAGING,
    VARIANTS,
    ZERO,
    Obj,
    Variant,
    containers,
    env_values,
    has_activator,
    named,
    namespace_of,
    of_kind,
    pod_spec,
    render,
    workloads,
)

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}

REQUIRED = [
    ("Namespace", None),
    ("Deployment", "rating-api"),
    ("Service", "rating-api"),
    ("Service", "rating-api-admin"),
    ("PodDisruptionBudget", "rating-api"),
    ("ServiceAccount", "rating-api"),
    ("Deployment", "rating-scaler"),
    ("Service", "rating-scaler"),
    ("PodDisruptionBudget", "rating-scaler"),
    ("ServiceAccount", "rating-scaler"),
    ("ScaledObject", "rating-api"),
    ("NetworkPolicy", "default-deny-ingress"),
    ("PodMonitor", "rating-api"),
    ("PodMonitor", "rating-scaler"),
    ("PrometheusRule", None),
    ("ConfigMap", None),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_renders_the_required_objects(variant: Variant) -> None:
    objects = render(variant)
    present = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    kinds = {kind for kind, _ in present}
    missing = [
        (kind, name)
        for kind, name in REQUIRED
        if (kind, name) not in present and not (name is None and kind in kinds)
    ]
    assert not missing, f"{variant}: missing {missing}"
    assert len(present) == len(objects), f"{variant}: duplicate kind/name pairs"


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_everything_lives_in_the_one_namespace(variant: Variant) -> None:
    objects = render(variant)
    namespace = namespace_of(objects)
    misplaced = [
        f"{obj['kind']}/{obj['metadata']['name']}: {obj['metadata'].get('namespace')}"
        for obj in objects
        if obj["kind"] not in CLUSTER_SCOPED and obj["metadata"].get("namespace") != namespace
    ]
    assert not misplaced, f"{variant}: not in {namespace}: {misplaced}"


@pytest.mark.parametrize(
    ("variant", "namespace"),
    [
        (BASE, "openclaw-rating"),
        (STAGING, "openclaw-rating-staging"),
        (PRODUCTION, "openclaw-rating"),
        (ZERO, "openclaw-rating"),
    ],
    ids=str,
)
def test_namespace_per_environment(variant: Variant, namespace: str) -> None:
    assert namespace_of(render(variant)) == namespace


def test_namespace_enforces_the_restricted_pod_security_standard() -> None:
    for variant in (BASE, *OVERLAYS):
        (namespace,) = of_kind(render(variant), "Namespace")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def _differences_allowed_between_environments(objects: list[Obj]) -> list[Obj]:
    """Blank out what the overlays may change: namespace, image tag, replica bounds."""
    namespace = namespace_of(objects)
    text_namespace = re.compile(rf"(?<![\w-]){re.escape(namespace)}(?![\w-])")

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        if isinstance(value, str):
            return text_namespace.sub("<namespace>", value)
        return value

    scrubbed: list[Obj] = scrub(objects)
    for workload in workloads(scrubbed):
        for container in containers(workload):
            container["image"] = container["image"].rsplit(":", 1)[0] + ":<tag>"
    for scaled_object in of_kind(scrubbed, "ScaledObject"):
        spec = scaled_object["spec"]
        spec["minReplicaCount"] = spec["maxReplicaCount"] = spec["fallback"]["replicas"] = "<bound>"
    return scrubbed


def test_overlays_differ_only_in_namespace_image_tag_and_replica_bounds() -> None:
    staging = _differences_allowed_between_environments(render(STAGING))
    production = _differences_allowed_between_environments(render(PRODUCTION))
    assert staging == production


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_one_image_one_command_per_deployment(variant: Variant) -> None:
    objects = render(variant)
    images = {c["image"] for w in workloads(objects) for c in containers(w)}
    assert len(images) == 1, f"{variant}: more than one image: {images}"
    (image,) = images
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest" and "/" not in tag, f"{variant}: unpinned {image}"
    commands = {
        w["metadata"]["name"]: [c.get("command") for c in containers(w)] for w in workloads(objects)
    }
    expected = {"rating-api": [["rating-api"]], "rating-scaler": [["rating-scaler"]]}
    if has_activator(objects):
        expected[ACTIVATOR] = [["rating-activator"]]
    assert commands == expected


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_every_pod_runs_locked_down(variant: Variant) -> None:
    for workload in workloads(render(variant)):
        where = f"{variant}: {workload['metadata']['name']}"
        spec = pod_spec(workload)
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, where
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), f"{where}: {key}"
        assert not [v for v in spec.get("volumes", []) if "hostPath" in v], where
        for container in containers(workload):
            context = container.get("securityContext", {})
            effective = {**pod, **context}
            for key in ("runAsUser", "runAsGroup"):
                value = effective.get(key)
                assert isinstance(value, int) and value > 0, f"{where}: {key}={value!r}"
            assert effective.get("runAsNonRoot") is True, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not context.get("capabilities", {}).get("add"), where
            assert not context.get("privileged"), where
            assert effective.get("seccompProfile", {}).get("type") == "RuntimeDefault", where


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_writable_paths_are_empty_dirs(variant: Variant) -> None:
    """With a read-only root, /tmp must be an emptyDir (Python's tempfile needs it)."""
    for workload in workloads(render(variant)):
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        for container in containers(workload):
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{variant}: {container['name']} has no /tmp"
            assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
            for mount in mounts.values():
                volume = volumes[mount["name"]]
                if "emptyDir" not in volume:
                    assert mount.get("readOnly") is True, f"{variant}: {mount} is writable"


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_requests_and_limits(variant: Variant) -> None:
    for workload in workloads(render(variant)):
        for container in containers(workload):
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert set(resources.get(kind, {})) >= {"cpu", "memory"}, (
                    f"{variant}: {container['name']} {kind}"
                )


# Only the scaler (it watches EndpointSlices) and the activator (it watches them and
# writes the public one and its Lease) talk to the Kubernetes API.
API_CLIENTS = {"rating-scaler", ACTIVATOR}


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_only_the_scaler_and_the_activator_carry_a_token(variant: Variant) -> None:
    objects = render(variant)
    accounts = {sa["metadata"]["name"]: sa for sa in of_kind(objects, "ServiceAccount")}
    for workload in workloads(objects):
        spec, name = pod_spec(workload), workload["metadata"]["name"]
        account = spec.get("serviceAccountName")
        assert account in accounts, f"{variant}: {name} uses {account}"
        assert accounts[account].get("automountServiceAccountToken") is False
        assert spec.get("automountServiceAccountToken") is (name in API_CLIENTS), name


# Liveness on the admin port, which public load cannot fill (at --max-connections the
# public port answers everything with 503); readiness on the public port.
PROBES = {
    "startupProbe": ("/healthz", "admin"),
    "livenessProbe": ("/healthz", "admin"),
    "readinessProbe": ("/readyz", "http"),
}


def shutdown_seconds(workload: Obj) -> dict[str, float]:
    """What a stopping rating-api pod spends, step by step, and the grace it has."""
    (container,) = containers(workload)
    env = {item["name"]: item.get("value") for item in container["env"]}
    return {
        "preStop": float(container["lifecycle"]["preStop"]["sleep"]["seconds"]),
        "delay": float(env.get("RATING_API_SHUTDOWN_DELAY") or 0),
        "drain": float(env.get("RATING_API_DRAIN_TIMEOUT") or 10),
        "grace": float(pod_spec(workload).get("terminationGracePeriodSeconds", 30)),
    }


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_rating_api_drains_within_its_grace_period(variant: Variant) -> None:
    """The shutdown delay is on (else the pod never says `Connection: close`), and the
    preStop sleep, the delay and the drain together fit the grace period."""
    steps = shutdown_seconds(named(render(variant), "Deployment", "rating-api"))
    assert steps["delay"] > 0, "RATING_API_SHUTDOWN_DELAY is not set: no drain"
    used = steps["preStop"] + steps["delay"] + steps["drain"]
    assert used <= steps["grace"], f"{variant}: {steps}"


SPREAD_KEYS = ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_pods_spread_over_zones_and_nodes_per_replica_set(variant: Variant) -> None:
    for workload in workloads(render(variant)):
        constraints = pod_spec(workload)["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in constraints] == SPREAD_KEYS, workload["metadata"]
        for constraint in constraints:
            assert constraint["matchLabelKeys"] == ["pod-template-hash"]
            # A burst never waits on the spread.
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_disruption_budgets_never_block_a_drain(variant: Variant) -> None:
    """maxUnavailable 1 lets a drain evict one pod at any replica count; minAvailable 1
    at one replica would block it for good."""
    for budget in of_kind(render(variant), "PodDisruptionBudget"):
        spec = budget["spec"]
        assert "minAvailable" not in spec, budget["metadata"]["name"]
        assert spec["maxUnavailable"] == 1, budget["metadata"]["name"]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_the_scaler_may_poll_only_services_of_its_namespace(variant: Variant) -> None:
    objects = render(variant)
    (container,) = containers(named(objects, "Deployment", "rating-scaler"))
    env = {item["name"]: item.get("value") for item in container["env"]}
    namespace = namespace_of(objects)
    assert env["RATING_SCALER_ALLOWED_HOSTS"] == f"*.{namespace}.svc.cluster.local"


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_rating_api_pod(variant: Variant) -> None:
    api = named(render(variant), "Deployment", "rating-api")
    assert "replicas" not in api["spec"], "the HPA owns rating-api's replica count"
    (container,) = containers(api)
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    probes = {kind: container[kind]["httpGet"] for kind in PROBES}
    assert {kind: (get["path"], get["port"]) for kind, get in probes.items()} == PROBES
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == 9090


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_scaler_pod(variant: Variant) -> None:
    scaler = named(render(variant), "Deployment", "rating-scaler")
    assert scaler["spec"]["replicas"] == 2
    (container,) = containers(scaler)
    probes = {"readinessProbe": "readiness", "livenessProbe": "liveness"}
    if "mtls" in variant.components:
        # kubelet's gRPC probes cannot do TLS: the component moves them to HTTP.
        for probe in probes:
            assert "grpc" not in container[probe] and "httpGet" in container[probe]
    else:
        for probe, service in probes.items():
            assert container[probe]["grpc"]["service"] == service


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_scaled_object(variant: Variant) -> None:
    objects = render(variant)
    (scaled_object,) = of_kind(objects, "ScaledObject")
    spec = scaled_object["spec"]
    low, high = spec["minReplicaCount"], spec["maxReplicaCount"]
    # A fleet at zero needs the activator to take its traffic; without it, 1 at least.
    assert (0 if has_activator(objects) else 1) <= low <= high, f"{variant}: {low}..{high}"
    assert low <= spec["fallback"]["replicas"] <= high
    assert spec["fallback"]["failureThreshold"] >= 1
    (trigger,) = spec["triggers"]
    push = "push" in variant.components or has_activator(objects)
    assert trigger["type"] == ("external-push" if push else "external")
    assert trigger.get("metricType", "AverageValue") == "AverageValue"
    metadata = trigger["metadata"]
    assert metadata["metric"] in ("demand", "deficit")
    assert 0 < float(metadata["targetUtilization"]) <= 1
    assert float(metadata["activationDemand"]) >= 0
    assert float(metadata["window"]) > 0
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0, "scale up at once"
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 120, "scale down calmly"


def allowed_up(policy: dict[str, Any], current: int) -> int:
    """The count one scale-up policy allows from `current` in a period (HPA v2 rules)."""
    if policy["type"] == "Pods":
        return current + int(policy["value"])
    return math.ceil(current * (1 + int(policy["value"]) / 100))


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_one_sync_reaches_the_right_size_from_any_count(variant: Variant) -> None:
    """Demand says how many pods: the policies let the first sync set any count up to max."""
    (scaled_object,) = of_kind(render(variant), "ScaledObject")
    spec = scaled_object["spec"]
    up = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"]
    assert up["selectPolicy"] == "Max"
    low, high = spec["minReplicaCount"], spec["maxReplicaCount"]
    for current in range(low, high):
        reach = max(allowed_up(policy, current) for policy in up["policies"])
        assert reach >= high, f"{variant}: from {current} pods one sync reaches only {reach}"


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_tolerances_are_set_per_direction(variant: Variant) -> None:
    (scaled_object,) = of_kind(render(variant), "ScaledObject")
    behavior = scaled_object["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    up, down = (float(behavior[way]["tolerance"]) for way in ("scaleUp", "scaleDown"))
    assert 0 < up < 0.1, "finer than the cluster-wide 10 % on the way up"
    assert down == 0.1


@pytest.mark.parametrize(
    ("variant", "bounds"),
    [(BASE, (2, 20)), (STAGING, (1, 4)), (PRODUCTION, (2, 20)), (ZERO, (0, 20))],
    ids=str,
)
def test_replica_bounds_per_environment(variant: Variant, bounds: tuple[int, int]) -> None:
    (scaled_object,) = of_kind(render(variant), "ScaledObject")
    spec = scaled_object["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == bounds


def test_dashboard_config_map_carries_the_sidecar_label() -> None:
    for variant in (BASE, *OVERLAYS):
        dashboards = [
            cm
            for cm in of_kind(render(variant), "ConfigMap")
            if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
        ]
        assert len(dashboards) == 1, variant
        assert [key for key in dashboards[0]["data"] if key.endswith(".json")]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_scale_from_zero_only_with_the_activator(variant: Variant) -> None:
    """At zero pods, someone must hold the requests and tell the scaler: the activator.
    Its trigger is external-push, so that KEDA scales 0 -> 1 the moment the scaler
    streams true, not at its next poll."""
    objects = render(variant)
    (scaled_object,) = of_kind(objects, "ScaledObject")
    spec = scaled_object["spec"]
    (trigger,) = spec["triggers"]
    if not has_activator(objects):
        assert spec["minReplicaCount"] >= 1 and "activator" not in trigger["metadata"]
        return
    assert spec["minReplicaCount"] == 0 and "idleReplicaCount" not in spec
    assert trigger["type"] == "external-push"
    assert {"activator", "targetPerPod"} <= set(trigger["metadata"])


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v.overlay == "zero"], ids=str)
def test_target_per_pod_is_the_pods_refill_times_the_utilization(variant: Variant) -> None:
    """A fleet at zero has no pod to report its refill rate, so the trigger says the
    target per pod; it must be what the pods would report, times targetUtilization."""
    objects = render(variant)
    (scaled_object,) = of_kind(objects, "ScaledObject")
    (trigger,) = scaled_object["spec"]["triggers"]
    rate = float(env_values(named(objects, "Deployment", "rating-api"))["RATING_API_BUCKET_RATE"])
    utilization = float(trigger["metadata"]["targetUtilization"])
    assert float(trigger["metadata"]["targetPerPod"]) == pytest.approx(rate * utilization)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v.overlay == "zero"], ids=str)
def test_the_activator_pod(variant: Variant) -> None:
    activator = named(render(variant), "Deployment", ACTIVATOR)
    assert activator["spec"]["replicas"] == 2
    (container,) = containers(activator)
    env = {e["name"]: e for e in container["env"]}
    # Its identity as the Lease's holder.
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    probes = {
        kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", "admin"),
        "livenessProbe": ("/healthz", "admin"),
        "readinessProbe": ("/readyz", "admin"),
    }
    values = env_values(activator)
    hold, drain = (
        float(values["RATING_ACTIVATOR_HOLD_TIMEOUT"]),
        float(values["RATING_ACTIVATOR_DRAIN_TIMEOUT"]),
    )
    assert drain >= hold, "a request held at SIGTERM must be answered within the drain"
    stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    used = stop + float(values["RATING_ACTIVATOR_SHUTDOWN_DELAY"]) + drain
    assert used <= pod_spec(activator)["terminationGracePeriodSeconds"], used
    assert int(values["RATING_ACTIVATOR_MAX_HELD"]) >= 1

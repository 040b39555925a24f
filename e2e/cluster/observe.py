"""What the cluster did, read from the API once a second: each rating Deployment's
replicas (spec and ready), its HPA's desired count and metric, and the ScaledObject's
conditions."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client

from e2e.cluster.kube import Json, as_json

DEPLOYMENT = "rating-api"
HPA = "keda-hpa-rating-api"
SCALED_OBJECT = "rating-api"


@dataclass(frozen=True)
class PathState:
    spec: int
    ready: int
    hpa_desired: int | None
    hpa_metric: float | None


@dataclass(frozen=True)
class Sample:
    t_s: float
    phase: str
    rate_per_s: float
    paths: dict[str, PathState]
    counts: dict[str, dict[str, int]]


def quantity(text: str | None) -> float | None:
    """A Kubernetes quantity such as `41`, `41500m` or `1.2k` as a float."""
    if text is None:
        return None
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}
    if text[-1] in suffixes:
        return float(text[:-1]) * suffixes[text[-1]]
    return float(text)


class Observer:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.apps = client.AppsV1Api(api)
        self.autoscaling = client.AutoscalingV2Api(api)
        self.custom = client.CustomObjectsApi(api)

    def path_state(self, namespace: str) -> PathState:
        deployment = as_json(self.api, self.apps.read_namespaced_deployment(DEPLOYMENT, namespace))
        desired, metric = self.hpa(namespace)
        return PathState(
            spec=int(deployment["spec"].get("replicas") or 0),
            ready=int((deployment.get("status") or {}).get("readyReplicas") or 0),
            hpa_desired=desired,
            hpa_metric=metric,
        )

    def hpa(self, namespace: str) -> tuple[int | None, float | None]:
        try:
            found = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(HPA, namespace)
        except client.ApiException as error:
            if error.status == 404:
                return None, None
            raise
        status = as_json(self.api, found).get("status") or {}
        metric = None
        for current in status.get("currentMetrics") or []:
            if "external" in current:
                metric = quantity(current["external"]["current"].get("averageValue"))
        desired = status.get("desiredReplicas")
        return (None if desired is None else int(desired)), metric

    def hpa_exists(self, namespace: str) -> bool:
        return self.hpa_object(namespace) is not None

    def hpa_object(self, namespace: str) -> Json | None:
        try:
            found = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(HPA, namespace)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return as_json(self.api, found)

    def scaled_object(self, namespace: str) -> Json:
        found = self.custom.get_namespaced_custom_object(
            "keda.sh", "v1alpha1", namespace, "scaledobjects", SCALED_OBJECT
        )
        return found if isinstance(found, dict) else {}

    def condition(self, namespace: str, kind: str) -> str | None:
        status = self.scaled_object(namespace).get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == kind:
                return str(condition.get("status"))
        return None

"""Every rendered object validates against the schema of the API that will receive it.

- Kubernetes kinds: the OpenAPI schema of a pinned Kubernetes release, from
  kubernetes-validate, in strict mode (unknown fields are errors, as with
  `kubectl apply`'s default server-side field validation).
- KEDA kinds: the openAPIV3Schema of KEDA v2.20.2's CRDs (data/keda/), made
  strict the same way, since the API server would prune or reject unknown fields.
- Prometheus Operator kinds: a hand-written subset schema (data/prometheus-operator/),
  because the operator's CRDs are not available offline.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.kube import (
    DATA,
    PRODUCTION,
    VARIANTS,
    Obj,
    Variant,
    has_activator,
    named,
    render,
)

# The oldest Kubernetes minor that KEDA 2.17 (the oldest KEDA this project
# supports) is tested against: anything that validates here also exists in the
# newer releases that later KEDA versions need.
KUBERNETES_VERSION = "1.30.0"

CRD_FILES = {
    "ScaledObject": "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": "keda.sh_triggerauthentications.yaml",
}
CUSTOM_GROUPS = ("keda.sh/", "monitoring.coreos.com/")


def _strict(schema: Any) -> Any:
    """Forbid properties a structural schema does not declare."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def keda_validator(kind: str) -> jsonschema.protocols.Validator:
    crd = yaml.safe_load((DATA / "keda" / CRD_FILES[kind]).read_text())
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


@functools.cache
def operator_validator(kind: str) -> jsonschema.protocols.Validator:
    schemas = yaml.safe_load((DATA / "prometheus-operator" / "schemas.yaml").read_text())
    schema = {**schemas[kind], "definitions": schemas["definitions"]}
    return jsonschema.Draft7Validator(schema)


def validate(obj: Obj) -> None:
    """Raise if `obj` does not match the schema of its kind."""
    kind, api_version = obj["kind"], obj["apiVersion"]
    if api_version.startswith("keda.sh/"):
        assert api_version == "keda.sh/v1alpha1", api_version
        keda_validator(kind).validate(obj)
    elif api_version.startswith("monitoring.coreos.com/"):
        operator_validator(kind).validate(obj)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def _ids(objects: list[Obj]) -> list[str]:
    return [f"{obj['kind']}/{obj['metadata']['name']}" for obj in objects]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_kubernetes_objects_validate(variant: Variant) -> None:
    core = [o for o in render(variant) if not o["apiVersion"].startswith(CUSTOM_GROUPS)]
    assert core
    for obj, name in zip(core, _ids(core), strict=True):
        try:
            validate(obj)
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{variant}: {name}: {exc.message}")
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{variant}: {name}: {exc.message} at {list(exc.absolute_path)}")


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_keda_objects_validate(variant: Variant) -> None:
    keda = [o for o in render(variant) if o["apiVersion"].startswith("keda.sh/")]
    expected = 2 if "mtls" in variant.components else 1
    assert len(keda) == expected, _ids(keda)
    for obj, name in zip(keda, _ids(keda), strict=True):
        try:
            validate(obj)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{variant}: {name}: {exc.message} at {list(exc.absolute_path)}")


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_prometheus_operator_objects_validate(variant: Variant) -> None:
    objects = render(variant)
    monitoring = [o for o in objects if o["apiVersion"].startswith("monitoring.")]
    monitors = 3 if has_activator(objects) else 2  # one per Deployment
    assert sorted(o["kind"] for o in monitoring) == ["PodMonitor"] * monitors + ["PrometheusRule"]
    for obj, name in zip(monitoring, _ids(monitoring), strict=True):
        try:
            validate(obj)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{variant}: {name}: {exc.message} at {list(exc.absolute_path)}")


def _deployment_port_as_string(objects: list[Obj]) -> Obj:
    obj = named(objects, "Deployment", "rating-api")
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    return obj


def _deployment_unknown_field(objects: list[Obj]) -> Obj:
    obj = named(objects, "Deployment", "rating-scaler")
    obj["spec"]["replica"] = 2
    return obj


def _service_without_port(objects: list[Obj]) -> Obj:
    obj = named(objects, "Service", "rating-api")
    del obj["spec"]["ports"][0]["port"]
    return obj


def _network_policy_bad_port(objects: list[Obj]) -> Obj:
    obj = named(objects, "NetworkPolicy", "rating-api-admin")
    obj["spec"]["ingress"][0]["ports"][0]["protocol"] = ["TCP"]
    return obj


def _scaled_object_number_in_metadata(objects: list[Obj]) -> Obj:
    obj = named(objects, "ScaledObject", "rating-api")
    obj["spec"]["triggers"][0]["metadata"]["port"] = 9090
    return obj


def _scaled_object_negative_min(objects: list[Obj]) -> Obj:
    obj = named(objects, "ScaledObject", "rating-api")
    obj["spec"]["minReplicaCount"] = -1
    return obj


def _scaled_object_misspelt_field(objects: list[Obj]) -> Obj:
    obj = named(objects, "ScaledObject", "rating-api")
    obj["spec"]["fallback"]["replica"] = obj["spec"]["fallback"].pop("replicas")
    return obj


def _trigger_authentication_without_key(objects: list[Obj]) -> Obj:
    obj = named(objects, "TriggerAuthentication", "rating-scaler-mtls")
    del obj["spec"]["secretTargetRef"][0]["key"]
    return obj


def _pod_monitor_misspelt_field(objects: list[Obj]) -> Obj:
    obj = named(objects, "PodMonitor", "rating-api")
    obj["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    return obj


def _rule_with_prose_duration(objects: list[Obj]) -> Obj:
    (obj,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    obj["spec"]["groups"][0]["rules"][0]["for"] = "5 minutes"
    return obj


BREAKAGES: dict[str, Callable[[list[Obj]], Obj]] = {
    "deployment-port-as-string": _deployment_port_as_string,
    "deployment-unknown-field": _deployment_unknown_field,
    "service-without-port": _service_without_port,
    "network-policy-bad-protocol": _network_policy_bad_port,
    "scaled-object-number-in-metadata": _scaled_object_number_in_metadata,
    "scaled-object-negative-min": _scaled_object_negative_min,
    "scaled-object-misspelt-field": _scaled_object_misspelt_field,
    "trigger-authentication-without-key": _trigger_authentication_without_key,
    "pod-monitor-misspelt-field": _pod_monitor_misspelt_field,
    "rule-with-prose-duration": _rule_with_prose_duration,
}


@pytest.mark.parametrize("breakage", BREAKAGES.values(), ids=BREAKAGES.keys())
def test_validation_rejects_broken_objects(breakage: Callable[[list[Obj]], Obj]) -> None:
    objects = render(Variant("production+mtls", PRODUCTION.overlay, ("mtls",)))
    broken = breakage(copy.deepcopy(objects))
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)

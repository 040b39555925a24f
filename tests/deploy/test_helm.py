"""The Helm chart is the kustomize manifests in another form: its templates are generated
from them (charts/generate.py), and each render below is compared object by object with
the matching kustomize render. Also `helm lint`, the values schema, and the schemas of
the APIs that receive the objects.

Uses the pinned helm from the e2e cache; builds it from the Go module proxy when missing
(minutes, once).
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from charts import generate
from e2e.cluster import build, helm
from tests.deploy.kube import MANIFESTS, Obj, kustomize, named, of_kind
from tests.deploy.test_schemas import validate

# A cold build of helm runs inside the first test that needs it.
pytestmark = pytest.mark.timeout(900)

CHART = helm.CHART
HELM_LABELS = tuple(generate.HELM_LABELS)


@functools.cache
def helm_binary() -> Path:
    if shutil.which("go") is None:  # no recipe to check: any helm in the cache
        if build.binary("helm").exists():
            return build.binary("helm")
        pytest.skip("needs Go to build helm (e2e/cluster/build.py), or a helm in the e2e cache")
    return helm.binary()


def run_helm(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm_binary()), *args],
        capture_output=True,
        text=True,
        env=helm.env(tmp_path / "helm"),
        timeout=120,
        check=False,
    )


@functools.cache
def _template(args: tuple[str, ...], home: Path) -> tuple[Obj, ...]:
    done = run_helm(["template", helm.RELEASE, str(CHART), *args], home)
    assert done.returncode == 0, f"helm template {' '.join(args)} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def template(tmp_path: Path, *args: str) -> list[Obj]:
    return copy.deepcopy(list(_template(args, tmp_path.parent)))


def template_fails(tmp_path: Path, *args: str) -> str:
    done = run_helm(["template", helm.RELEASE, str(CHART), *args], tmp_path)
    assert done.returncode != 0, f"helm template {' '.join(args)} rendered"
    return done.stderr


def without_helm_labels(objects: list[Obj]) -> list[Obj]:
    """The one difference allowed: Helm's own labels on each object's metadata."""
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        assert {label: labels.get(label) for label in HELM_LABELS} == {
            "helm.sh/chart": f"rating-api-{helm.chart_version()}",
            "app.kubernetes.io/managed-by": "Helm",
        }, f"{obj['kind']}/{obj['metadata']['name']}"
        for label in HELM_LABELS:
            del labels[label]
    return objects


def env_by_name(objects: list[Obj]) -> list[Obj]:
    """Env entries in name order: a strategic merge appends an overlay's new variables
    where the chart's extraEnv puts them, and the order of distinct names is no matter."""
    for obj in of_kind(objects, "Deployment"):
        for container in obj["spec"]["template"]["spec"]["containers"]:
            container["env"].sort(key=lambda item: item["name"])
    return objects


def by_key(objects: list[Obj]) -> dict[tuple[str, str], Obj]:
    keyed = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    assert len(keyed) == len(objects), "two objects of one kind and name"
    return keyed


# The chart installs into the release's namespace and leaves the Namespace to
# `helm install --create-namespace`; the kustomize base names and makes its own.
IN_THE_BASE_NAMESPACE = ("-n", "openclaw-rating")


def without_namespace(objects: list[Obj]) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] != "Namespace"]


def assert_same_objects(chart: list[Obj], kustomized: list[Obj]) -> None:
    ours, theirs = by_key(chart), by_key(kustomized)
    assert sorted(ours) == sorted(theirs), "the chart and kustomize render other objects"
    for key, obj in theirs.items():
        assert ours[key] == obj, f"{key[0]}/{key[1]} differs"


def test_templates_are_generated_from_the_manifests_and_current() -> None:
    assert generate.generated_files(generate.TEMPLATES), "no generated templates"
    assert generate.stale() == [], "stale templates: run `python charts/generate.py`"


def test_a_manifest_change_makes_the_templates_stale(tmp_path: Path) -> None:
    """The staleness check sees a change under manifests/ (so it can fail)."""
    tree = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, tree)
    path = tree / "base" / "autoscaling" / "scaledobject.yaml"
    path.write_text(path.read_text().replace("pollingInterval: 5", "pollingInterval: 7"))
    fresh = generate.generate(tree)
    committed = generate.generated_files(generate.TEMPLATES)
    changed = [name for name in committed if fresh[name] != committed[name]]
    assert changed == ["scaledobject-rating-api.yaml"]


def test_helm_lint(tmp_path: Path) -> None:
    done = run_helm(["lint", "--strict", str(CHART)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_default_render_is_the_kustomize_base(tmp_path: Path) -> None:
    chart = without_helm_labels(template(tmp_path, *IN_THE_BASE_NAMESPACE))
    assert_same_objects(chart, without_namespace(kustomize(MANIFESTS / "base")))


@pytest.mark.parametrize(
    "components",
    [("push",), ("mtls",), ("push", "mtls"), ("activator",), ("mtls", "activator")],
    ids=lambda c: "+".join(c),
)
def test_each_toggle_renders_its_kustomize_component(
    tmp_path: Path, components: tuple[str, ...]
) -> None:
    sets = [arg for name in components for arg in ("--set", f"{name}.enabled=true")]
    chart = without_helm_labels(template(tmp_path, *IN_THE_BASE_NAMESPACE, *sets))
    assert_same_objects(chart, without_namespace(generate.render_base(components)))


ACTIVATOR_OBJECTS = {
    ("Deployment", "rating-activator"),
    ("ServiceAccount", "rating-activator"),
    ("Role", "rating-activator"),
    ("RoleBinding", "rating-activator"),
    ("Service", "rating-activator"),
    ("Service", "rating-activator-admin"),
    ("PodDisruptionBudget", "rating-activator"),
    ("PodMonitor", "rating-activator"),
    ("NetworkPolicy", "rating-activator-public"),
    ("NetworkPolicy", "rating-activator-admin"),
    ("NetworkPolicy", "rating-activator-egress"),
    ("NetworkPolicy", "rating-api-from-activator"),
}


def test_the_activator_toggle(tmp_path: Path) -> None:
    """On: the activator's objects, a public Service without a selector, and a
    ScaledObject that scales from zero through the activator. Off: none of it, exactly
    the default render."""
    off = by_key(template(tmp_path))
    assert by_key(template(tmp_path, "--set", "activator.enabled=false")) == off
    assert not ACTIVATOR_OBJECTS & set(off)
    assert "selector" in off[("Service", "rating-api")]["spec"]
    on = by_key(template(tmp_path, "--set", "activator.enabled=true"))
    assert set(on) - set(off) == ACTIVATOR_OBJECTS
    assert "selector" not in on[("Service", "rating-api")]["spec"]
    spec = on[("ScaledObject", "rating-api")]["spec"]
    assert spec["minReplicaCount"] == 0
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "external-push"
    assert trigger["metadata"]["activator"] == "default/rating-activator-admin"
    assert trigger["metadata"]["targetPerPod"] == "40"
    changed = {key for key in off if on[key] != off[key]}
    assert changed == {("Service", "rating-api"), ("ScaledObject", "rating-api")}


def test_the_activator_values_reach_their_places(tmp_path: Path) -> None:
    objects = template(
        tmp_path,
        *("-n", "ratings", "--set", "activator.enabled=true"),
        *("--set", "activator.replicas=3", "--set", "activator.holdTimeout=12.5"),
        *("--set", "activator.maxHeld=200", "--set", "activator.resources.limits.cpu=2"),
        *("--set", "api.bucket.refillPerS=12.5", "--set", "image.tag=1.2.3"),
    )
    activator = named(objects, "Deployment", "rating-activator")
    assert activator["spec"]["replicas"] == 3
    pod = activator["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "openclaw/rating-edge:1.2.3"
    assert container["resources"]["limits"] == {"cpu": 2, "memory": "256Mi"}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["RATING_ACTIVATOR_ENDPOINT_SLICES"] == "ratings/rating-api-admin"
    assert (env["RATING_ACTIVATOR_HOLD_TIMEOUT"], env["RATING_ACTIVATOR_MAX_HELD"]) == (
        "12.5",
        "200",
    )
    # The drain outlasts the hold, and the grace period the drain.
    assert env["RATING_ACTIVATOR_DRAIN_TIMEOUT"] == "18"
    assert pod["terminationGracePeriodSeconds"] == 33
    metadata = named(objects, "ScaledObject", "rating-api")["spec"]["triggers"][0]["metadata"]
    assert metadata["activator"] == "ratings/rating-activator-admin"
    assert metadata["targetPerPod"] == "10"  # 12.5 x 0.8


@pytest.mark.parametrize(
    ("rate", "target"), [("50", "40"), ("3", "2.4"), ("10", "8"), ("0.5", "0.4")]
)
def test_the_target_per_pod_is_computed_from_the_refill(
    tmp_path: Path, rate: str, target: str
) -> None:
    objects = template(
        tmp_path, "--set", "activator.enabled=true", "--set", f"api.bucket.refillPerS={rate}"
    )
    metadata = named(objects, "ScaledObject", "rating-api")["spec"]["triggers"][0]["metadata"]
    assert metadata["targetPerPod"] == target


@pytest.mark.parametrize("activator", ["false", "true"])
def test_the_forecast_keys_reach_the_trigger_only_when_asked(
    tmp_path: Path, activator: str
) -> None:
    def metadata(*args: str) -> Obj:
        objects = template(tmp_path, "--set", f"activator.enabled={activator}", *args)
        found: Obj = named(objects, "ScaledObject", "rating-api")["spec"]["triggers"][0]["metadata"]
        return found

    assert "forecast" not in metadata() and "forecastLead" not in metadata()
    asked = metadata(
        "--set", "autoscaling.forecast=recurring", "--set", "autoscaling.forecastLead=45"
    )
    assert (asked["forecast"], asked["forecastLead"]) == ("recurring", "45")
    assert metadata("--set", "autoscaling.forecast=recurring")["forecastLead"] == "30"


# Each switch by kind leaves out the activator's objects of that kind too.
SWITCHED_KINDS = {
    "networkPolicies.enabled": "NetworkPolicy",
    "podDisruptionBudgets.enabled": "PodDisruptionBudget",
    "monitoring.podMonitors.enabled": "PodMonitor",
}


@pytest.mark.parametrize(("value", "kind"), SWITCHED_KINDS.items(), ids=SWITCHED_KINDS.keys())
def test_the_switches_leave_out_the_activator_objects_too(
    tmp_path: Path, value: str, kind: str
) -> None:
    on = ("--set", "activator.enabled=true")
    everything = by_key(template(tmp_path, *on))
    rest = by_key(template(tmp_path, *on, "--set", f"{value}=false"))
    assert set(everything) - set(rest) == {key for key in everything if key[0] == kind}
    assert ("Deployment", "rating-activator") in rest


def test_production_overlay_is_the_defaults(tmp_path: Path) -> None:
    chart = without_helm_labels(template(tmp_path, *IN_THE_BASE_NAMESPACE))
    production = kustomize(MANIFESTS / "overlays" / "production")
    assert_same_objects(chart, without_namespace(production))


def test_zero_overlay_is_the_activator_value(tmp_path: Path) -> None:
    on = ("--set", "activator.enabled=true")
    chart = without_helm_labels(template(tmp_path, *IN_THE_BASE_NAMESPACE, *on))
    zero = kustomize(MANIFESTS / "overlays" / "zero")
    assert_same_objects(chart, without_namespace(zero))


def test_e2e_values_render_the_e2e_overlay(tmp_path: Path) -> None:
    chart = env_by_name(without_helm_labels(template(tmp_path, "-f", str(helm.VALUES))))
    overlay = env_by_name(kustomize(MANIFESTS / "overlays" / "e2e"))
    assert_same_objects(chart, overlay)


OPTIONAL = {
    "monitoring.podMonitors.enabled": {
        ("PodMonitor", "rating-api"),
        ("PodMonitor", "rating-scaler"),
    },
    "monitoring.prometheusRule.enabled": {("PrometheusRule", "rating-edge")},
    "monitoring.dashboard.enabled": {("ConfigMap", "rating-edge-dashboard")},
    "networkPolicies.enabled": {
        ("NetworkPolicy", name)
        for name in (
            "default-deny-ingress",
            "rating-api-egress",
            "rating-api-admin",
            "rating-api-public",
            "rating-scaler-grpc",
            "rating-scaler-http",
        )
    },
    "podDisruptionBudgets.enabled": {
        ("PodDisruptionBudget", "rating-api"),
        ("PodDisruptionBudget", "rating-scaler"),
    },
    "namespace.create": {("Namespace", "openclaw-rating")},
}
EVERYTHING = ("--set", "namespace.name=openclaw-rating", "--set", "namespace.create=true")


@pytest.mark.parametrize("value", OPTIONAL, ids=str)
def test_a_switch_leaves_out_exactly_its_objects(tmp_path: Path, value: str) -> None:
    everything = by_key(template(tmp_path, *EVERYTHING))
    rest = by_key(template(tmp_path, *EVERYTHING, "--set", f"{value}=false"))
    assert set(everything) - set(rest) == OPTIONAL[value]
    assert all(rest[key] == everything[key] for key in rest)


def test_values_reach_every_place_they_name(tmp_path: Path) -> None:
    objects = template(
        tmp_path,
        *("--set", "namespace.name=ratings", "--set", "namespace.create=true"),
        *("--set", "image.tag=1.2.3"),
        *("--set", "replicaCount=0", "--set", "autoscaling.maxReplicaCount=50"),
        *("--set", "autoscaling.fallbackReplicas=9", "--set", "scaler.replicas=3"),
        *("--set", "api.bucket.capacity=40", "--set", "api.bucket.refillPerS=12.5"),
    )
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"ratings"}
    assert named(objects, "Namespace", "ratings")
    images = {
        c["image"]
        for d in of_kind(objects, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"openclaw/rating-edge:1.2.3"}
    spec = named(objects, "ScaledObject", "rating-api")["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["fallback"]["replicas"]) == (
        0,
        50,
        9,
    )
    up = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"]
    assert [p["value"] for p in up["policies"]] == [50]
    metadata = spec["triggers"][0]["metadata"]
    assert metadata["scalerAddress"] == "rating-scaler.ratings.svc.cluster.local:6000"
    assert metadata["endpointSlices"] == "ratings/rating-api-admin"
    assert named(objects, "Deployment", "rating-scaler")["spec"]["replicas"] == 3
    (api,) = named(objects, "Deployment", "rating-api")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in api["env"]}
    assert (env["RATING_API_BUCKET_CAPACITY"], env["RATING_API_BUCKET_RATE"]) == ("40", "12.5")


def test_e2e_install_names_the_chart_and_its_version() -> None:
    assert helm.install_summary() == (
        f"helm upgrade --install rating-api charts/rating-api -f e2e/helm-values.yaml "
        f"(chart {helm.chart_version()})"
    )
    assert helm.install_argv(Path("k"))[:6] == [
        "upgrade",
        "--install",
        "rating-api",
        "charts/rating-api",
        "-f",
        "e2e/helm-values.yaml",
    ]


def test_the_release_namespace_and_no_namespace_object_by_default(tmp_path: Path) -> None:
    """`helm uninstall` must not take the namespace, and the user's Secrets in it, along."""
    objects = template(tmp_path, "-n", "team-a")
    assert not of_kind(objects, "Namespace")
    assert {o["metadata"]["namespace"] for o in objects} == {"team-a"}
    metadata = named(objects, "ScaledObject", "rating-api")["spec"]["triggers"][0]["metadata"]
    assert metadata["scalerAddress"] == "rating-scaler.team-a.svc.cluster.local:6000"


def test_e2e_keeps_a_namespace_of_its_own_making(tmp_path: Path) -> None:
    """`make e2e` installs into an empty cluster with the release in `default`."""
    objects = template(tmp_path, "-f", str(helm.VALUES))
    assert named(objects, "Namespace", "openclaw-rating")
    assert {o["metadata"].get("namespace") for o in without_namespace(objects)} == {
        "openclaw-rating"
    }


def pdb_spec(objects: list[Obj], name: str) -> Obj:
    return dict(named(objects, "PodDisruptionBudget", name)["spec"])


@pytest.mark.parametrize("replicas", [1, 2, 5])
def test_one_scaler_replica_never_blocks_a_node_drain(tmp_path: Path, replicas: int) -> None:
    objects = template(tmp_path, "--set", f"scaler.replicas={replicas}")
    assert named(objects, "Deployment", "rating-scaler")["spec"]["replicas"] == replicas
    spec = pdb_spec(objects, "rating-scaler")
    assert "minAvailable" not in spec and spec["maxUnavailable"] == 1


def test_two_rating_pods_by_default_and_one_never_blocks_a_drain(tmp_path: Path) -> None:
    defaults = template(tmp_path)
    assert named(defaults, "ScaledObject", "rating-api")["spec"]["minReplicaCount"] == 2
    assert pdb_spec(defaults, "rating-api") == pdb_spec(
        template(tmp_path, "--set", "replicaCount=1"), "rating-api"
    )
    assert pdb_spec(defaults, "rating-api")["maxUnavailable"] == 1
    assert "minAvailable" not in pdb_spec(defaults, "rating-api")


DIGEST = "sha256:" + "0123456789abcdef" * 4


def images(objects: list[Obj]) -> set[str]:
    return {
        c["image"]
        for d in of_kind(objects, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    }


def test_an_image_digest_wins_over_the_tag(tmp_path: Path) -> None:
    objects = template(tmp_path, "--set", "image.tag=1.2.3", "--set", f"image.digest={DIGEST}")
    assert images(objects) == {f"openclaw/rating-edge@{DIGEST}"}
    assert images(template(tmp_path)) == {f"openclaw/rating-edge:{helm_app_version()}"}


def helm_app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def peers(objects: list[Obj], policy: str) -> list[Obj]:
    spec = named(objects, "NetworkPolicy", policy)["spec"]
    return [peer for rule in spec["ingress"] for peer in rule.get("from", [])]


def namespace_label(peer: Obj) -> str:
    return str(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])


def test_peer_namespaces_and_keda_operator_labels_are_values(tmp_path: Path) -> None:
    objects = template(
        tmp_path,
        *("--set", "networkPolicies.keda.namespace=autoscaling"),
        *("--set", "networkPolicies.keda.podLabels.app\\.kubernetes\\.io/name=keda-operator"),
        *("--set", "networkPolicies.keda.podLabels.app=null"),
        *("--set", "networkPolicies.monitoring.namespace=observability"),
    )
    (keda,) = peers(objects, "rating-scaler-grpc")
    assert namespace_label(keda) == "autoscaling"
    assert keda["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "keda-operator"}
    admin = peers(objects, "rating-api-admin")
    assert [namespace_label(p) for p in admin if "namespaceSelector" in p] == ["observability"]
    assert [namespace_label(p) for p in peers(objects, "rating-scaler-http")] == ["observability"]
    (default,) = peers(template(tmp_path), "rating-scaler-grpc")
    assert (namespace_label(default), default["podSelector"]["matchLabels"]) == (
        "keda",
        {"app": "keda-operator"},
    )


def test_monitoring_labels_reach_the_monitors_and_the_rule_only(tmp_path: Path) -> None:
    objects = template(tmp_path, "--set", "monitoring.labels.release=kube-prometheus-stack")
    labelled = {
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if o["metadata"].get("labels", {}).get("release") == "kube-prometheus-stack"
    }
    assert labelled == {
        ("PodMonitor", "rating-api"),
        ("PodMonitor", "rating-scaler"),
        ("PrometheusRule", "rating-edge"),
    }


def scaler_env(objects: list[Obj]) -> dict[str, str]:
    (container,) = named(objects, "Deployment", "rating-scaler")["spec"]["template"]["spec"][
        "containers"
    ]
    return {item["name"]: item.get("value", "") for item in container["env"]}


def test_the_scaler_may_poll_the_release_namespace_only_unless_told(tmp_path: Path) -> None:
    own = scaler_env(template(tmp_path, "-n", "team-a"))
    assert own["RATING_SCALER_ALLOWED_HOSTS"] == "*.team-a.svc.cluster.local"
    told = scaler_env(
        template(tmp_path, "--set", "scaler.allowedHosts={*.team-a.svc.cluster.local,localhost}")
    )
    assert told["RATING_SCALER_ALLOWED_HOSTS"] == "*.team-a.svc.cluster.local,localhost"


VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "push+mtls": {"push": {"enabled": True}, "mtls": {"enabled": True}},
    "activator": {
        "activator": {"enabled": True, "replicas": 3, "holdTimeout": 12.5, "maxHeld": 50},
        "api": {"bucket": {"refillPerS": 12.5}},
    },
    "production": {
        "namespace": {"name": "ratings", "create": True},
        "image": {"digest": DIGEST},
        "scaler": {"replicas": 1, "allowedHosts": ["*.ratings.svc.cluster.local"]},
        "monitoring": {"labels": {"release": "kube-prometheus-stack"}},
        "networkPolicies": {
            "enabled": True,
            "keda": {"namespace": "autoscaling", "podLabels": {"name": "keda-operator"}},
            "monitoring": {"namespace": "observability"},
        },
    },
    "e2e": yaml.safe_load(helm.VALUES.read_text()),
}


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_rendered_object_validates(tmp_path: Path, values: dict[str, Any]) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    objects = template(tmp_path, "-f", str(path))
    assert of_kind(objects, "ScaledObject") and of_kind(objects, "Deployment")
    for obj in objects:
        try:
            validate(obj)
        except jsonschema.ValidationError as exc:
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            pytest.fail(f"{where}: {exc.message} at {list(exc.absolute_path)}")


# Each bad value, and what the error must say: the value's path and what is wrong.
BAD_VALUES = {
    "negative-min": (["--set", "replicaCount=-1"], ["at '/replicaCount': minimum: got -1"]),
    "min-not-a-number": (
        ["--set-string", "replicaCount=two"],
        ["/replicaCount", "string", "integer"],
    ),
    "unknown-key": (["--set", "replicas=3"], ["additional properties 'replicas' not allowed"]),
    "misspelt-toggle": (
        ["--set", "push.enable=true"],
        ["at '/push': additional properties 'enable' not allowed"],
    ),
    "toggle-not-boolean": (["--set-string", "mtls.enabled=yes"], ["/mtls/enabled", "boolean"]),
    "latest-tag": (["--set", "image.tag=latest"], ["image.tag latest is refused"]),
    "bad-namespace": (
        ["--set", "namespace.name=Rating_NS"],
        ["/namespace/name", "'Rating_NS' does not match pattern"],
    ),
    "zero-refill": (
        ["--set", "api.bucket.refillPerS=0"],
        ["api.bucket.refillPerS must be above 0, got 0"],
    ),
    "negative-capacity": (
        ["--set", "api.bucket.capacity=-5"],
        ["api.bucket.capacity must be above 0, got -5"],
    ),
    "refill-not-a-number": (
        ["--set", "api.bucket.refillPerS=fast"],
        ["/api/bucket/refillPerS", "'fast' does not match pattern"],
    ),
    "env-without-name": (
        ["--set", "api.extraEnv[0].value=x"],
        ["at '/api/extraEnv/0': missing property 'name'"],
    ),
    "min-above-max": (
        ["--set", "replicaCount=30"],
        ["replicaCount (30) must not exceed autoscaling.maxReplicaCount (20)"],
    ),
    "fallback-out-of-bounds": (
        ["--set", "autoscaling.fallbackReplicas=25"],
        ["autoscaling.fallbackReplicas (25) must lie between replicaCount (2)"],
    ),
    "forecast-maybe": (
        ["--set", "autoscaling.forecast=maybe"],
        ["/autoscaling/forecast", "value must be one of 'off', 'recurring'"],
    ),
    "forecast-lead-0": (
        ["--set", "autoscaling.forecastLead=0"],
        ["/autoscaling/forecastLead", "minimum: got 0, want 1"],
    ),
    "forecast-lead-601": (
        ["--set", "autoscaling.forecastLead=601"],
        ["/autoscaling/forecastLead", "maximum"],
    ),
    "create-without-name": (
        ["--set", "namespace.create=true"],
        ["namespace.create needs namespace.name"],
    ),
    "keda-namespace-at-the-top": (
        ["--set", "kedaNamespace=autoscaling"],
        ["additional properties 'kedaNamespace' not allowed"],
    ),
    "bad-keda-namespace": (
        ["--set", "networkPolicies.keda.namespace=KEDA"],
        ["/networkPolicies/keda/namespace", "'KEDA' does not match pattern"],
    ),
    "digest-in-the-tag": (
        ["--set", f"image.tag=0.1.0@{DIGEST}"],
        ["/image/tag", "does not match pattern"],
    ),
    "short-digest": (
        ["--set", "image.digest=sha256:abc"],
        ["/image/digest", "'sha256:abc' does not match pattern"],
    ),
    "no-scaler": (["--set", "scaler.replicas=0"], ["/scaler/replicas", "minimum: got 0"]),
    "bad-allowed-host": (
        ["--set", "scaler.allowedHosts={http://x}"],
        ["/scaler/allowedHosts/0", "does not match pattern"],
    ),
    "activator-misspelt": (
        ["--set", "activator.enable=true"],
        ["at '/activator': additional properties 'enable' not allowed"],
    ),
    "activator-no-replica": (
        ["--set", "activator.replicas=0"],
        ["/activator/replicas", "minimum: got 0"],
    ),
    "activator-holds-too-many": (
        ["--set", "activator.maxHeld=5000"],
        ["/activator/maxHeld", "maximum: got 5,000"],
    ),
    "activator-zero-hold": (
        ["--set", "activator.holdTimeout=0"],
        ["activator.holdTimeout must be above 0 and at most 600 seconds, got 0"],
    ),
    "activator-endless-hold": (
        ["--set", "activator.holdTimeout=3600"],
        ["activator.holdTimeout must be above 0 and at most 600 seconds, got 3600"],
    ),
    "bad-monitoring-label": (
        ["--set", "monitoring.labels.release=a b"],
        ["/monitoring/labels/release", "does not match pattern"],
    ),
}


@pytest.mark.parametrize(("args", "expected"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_values_are_refused_with_a_clear_message(
    tmp_path: Path, args: list[str], expected: list[str]
) -> None:
    message = template_fails(tmp_path, *args)
    for phrase in expected:
        assert phrase in message, f"{phrase!r} not in:\n{message}"


def chart_env_names() -> list[tuple[str, str]]:
    objects = generate.render_base(("mtls",))
    return [
        (deployment["metadata"]["name"], item["name"])
        for deployment in of_kind(objects, "Deployment")
        for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    ]


@pytest.mark.parametrize(("deployment", "variable"), chart_env_names(), ids="/".join)
def test_extra_env_cannot_set_what_the_chart_sets(
    tmp_path: Path, deployment: str, variable: str
) -> None:
    key = "api" if deployment == "rating-api" else "scaler"
    message = template_fails(tmp_path, "--set", f"{key}.extraEnv[0].name={variable}")
    assert f"{key}.extraEnv sets {variable}, which the chart sets itself" in message


def value_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Every value's dotted path; a mapping the chart takes whole counts as one."""
    whole = {"resources", "labels", "podLabels"}
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in whole:
            paths += value_paths(value, f"{path}.")
        else:
            paths.append(path)
    return paths


def test_the_chart_readme_lists_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    listed = set(re.findall(r"^\| `([\w.]+)` \|", readme, flags=re.M))
    values = value_paths(yaml.safe_load((CHART / "values.yaml").read_text()))
    assert "networkPolicies.keda.podLabels" in values
    assert sorted(set(values) - listed) == [], "values missing from the README's table"
    assert sorted(listed - set(values)) == [], "README rows for values that do not exist"

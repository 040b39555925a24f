"""Render the kustomizations under manifests/ and look things up in the result."""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
DATA = Path(__file__).resolve().parent / "data"

Obj = dict[str, Any]


def venv_tool(name: str) -> Path:
    """A tool that a PyPI package installed next to this interpreter."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: `make venv` installs it with the test extra")
    return path


@dataclass(frozen=True)
class Variant:
    """One way of rendering manifests/: the base, an overlay, or an overlay with components."""

    name: str
    overlay: str | None = None
    components: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name


BASE = Variant("base")
STAGING = Variant("staging", "staging")
PRODUCTION = Variant("production", "production")
# Scale from zero: the base with components/activator, listed in the overlay itself.
ZERO = Variant("zero", "zero")
VARIANTS = (
    BASE,
    STAGING,
    PRODUCTION,
    Variant("production+push", "production", ("push",)),
    Variant("production+mtls", "production", ("mtls",)),
    Variant("staging+push+mtls", "staging", ("push", "mtls")),
    ZERO,
    Variant("zero+push+mtls", "zero", ("push", "mtls")),
)
OVERLAYS = tuple(v for v in VARIANTS if v.overlay and not v.components)


def has_activator(objects: list[Obj]) -> bool:
    """Whether a render has components/activator in it (the zero overlay has)."""
    return any(o["kind"] == "Deployment" and o["metadata"]["name"] == ACTIVATOR for o in objects)


ACTIVATOR = "rating-activator"


def kustomize(path: Path) -> list[Obj]:
    """`kubectl kustomize path`, parsed. Raises with kustomize's message on failure."""
    result = subprocess.run(
        [str(venv_tool("kubectl")), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def _render(variant: Variant) -> tuple[Obj, ...]:
    if variant.overlay is None:
        return tuple(kustomize(MANIFESTS / "base"))
    if not variant.components:
        return tuple(kustomize(MANIFESTS / "overlays" / variant.overlay))
    # The way a user enables a component: list it in the overlay's own
    # kustomization (a wrapping kustomization would apply it after the
    # overlay's namespace and replacements, which is not what users get).
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "manifests"
        shutil.copytree(MANIFESTS, tree)
        overlay = tree / "overlays" / variant.overlay / "kustomization.yaml"
        config = yaml.safe_load(overlay.read_text())
        listed = config.get("components", [])
        config["components"] = listed + [f"../../components/{name}" for name in variant.components]
        overlay.write_text(yaml.safe_dump(config, sort_keys=False))
        return tuple(kustomize(overlay.parent))


def render(variant: Variant) -> list[Obj]:
    """The rendered objects of a variant; each test gets its own copy to change."""
    return copy.deepcopy(list(_render(variant)))


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def namespace_of(objects: list[Obj]) -> str:
    (namespace,) = of_kind(objects, "Namespace")
    return str(namespace["metadata"]["name"])


def workloads(objects: list[Obj]) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


def pod_spec(workload: Obj) -> Obj:
    return dict(workload["spec"]["template"]["spec"])


def pod_labels(workload: Obj) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"].get("labels", {}))


def containers(workload: Obj) -> list[Obj]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def container_ports(workload: Obj) -> dict[str, int]:
    """Named container ports of every container of the pod template."""
    return {
        port["name"]: int(port["containerPort"])
        for container in containers(workload)
        for port in container.get("ports", [])
        if "name" in port
    }


def label_selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels and matchExpressions)."""
    if selector is None:
        return False
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def selected_workloads(objects: list[Obj], selector: Obj) -> list[Obj]:
    return [w for w in workloads(objects) if label_selector_matches(selector, pod_labels(w))]


def service_selected_workloads(objects: list[Obj], service: Obj) -> list[Obj]:
    """Workloads whose pods a Service's (equality-only) selector picks."""
    selector = {"matchLabels": service["spec"].get("selector", {})}
    if not selector["matchLabels"]:
        return []
    return selected_workloads(objects, selector)


def env_values(workload: Obj) -> dict[str, str]:
    """The plain `value` of each env entry of the workload's first container."""
    env = pod_spec(workload)["containers"][0].get("env", [])
    return {item["name"]: item["value"] for item in env if "value" in item}


def scaled_object_triggers(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    for scaled_object in of_kind(objects, "ScaledObject"):
        for trigger in scaled_object["spec"]["triggers"]:
            yield scaled_object, trigger


def parse_service_host(host: str) -> tuple[str, str]:
    """`name.namespace.svc.cluster.local` -> (name, namespace)."""
    parts = host.split(".")
    assert len(parts) == 5 and parts[2:] == ["svc", "cluster", "local"], (
        f"{host!r} is not <service>.<namespace>.svc.cluster.local"
    )
    return parts[0], parts[1]

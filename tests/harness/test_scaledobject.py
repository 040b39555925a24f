"""The ScaledObject's behavior as the harness reads it from manifests/, quantities included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import hpa, scaledobject
from harness.hpa import DEFAULT_BEHAVIOR, Policy, Rules, Tolerance
from harness.scaledobject import MANIFEST, behavior, load, quantity


def manifest_behavior() -> dict[str, Any]:
    spec = yaml.safe_load(MANIFEST.read_text())["spec"]
    found: dict[str, Any] = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    return found


def test_the_loader_reads_the_real_manifest_field_by_field() -> None:
    """Every rule of the manifest, read on its own here, is in the loaded behavior."""
    loaded = load()
    for key, rules in (("scaleUp", loaded.scale_up), ("scaleDown", loaded.scale_down)):
        raw = manifest_behavior()[key]
        assert rules.stabilization_window_s == float(raw["stabilizationWindowSeconds"])
        assert rules.select == raw["selectPolicy"]
        assert rules.policies == tuple(
            Policy(p["type"], p["value"], float(p["periodSeconds"])) for p in raw["policies"]
        )
        assert rules.tolerance == pytest.approx(float(raw["tolerance"]))
    assert MANIFEST.is_file() and "manifests/base/autoscaling" in str(MANIFEST)


def test_the_demo_scales_as_the_manifest_says() -> None:
    assert load() == scaledobject.SCALED_OBJECT_BEHAVIOR
    assert scaledobject.SCALED_OBJECT_BEHAVIOR is scaledobject.scaled_object_behavior()  # once
    spec = hpa.HpaSpec(target_per_pod=8.0, behavior=scaledobject.SCALED_OBJECT_BEHAVIOR)
    assert spec.tolerance == Tolerance(up=0.05, down=0.1)  # the manifest's "0.05" and "0.1"
    with pytest.raises(AttributeError, match="NO_SUCH_NAME"):
        _ = scaledobject.NO_SUCH_NAME


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.05", 0.05), ("50m", 0.05), (0.05, 0.05), ("1", 1.0), (2, 2.0), ("1.5k", 1500.0),
     ("5e-2", 0.05), ("100u", 1e-4), ("1Ki", 1024.0), (".5", 0.5), (" 0.1 ", 0.1)],
    ids=["decimal", "milli", "yaml-float", "one", "yaml-int", "kilo", "exponent", "micro",
         "binary", "leading-dot", "spaces"],
)  # fmt: skip
def test_quantities_are_read_as_kubernetes_reads_them(text: object, expected: float) -> None:
    assert quantity(text, "scaleUp.tolerance") == pytest.approx(expected)


@pytest.mark.parametrize(
    "text", ["", "abc", "0.05x", "5 %", "m", True, None, [0.05]],
    ids=["empty", "word", "bad-suffix", "percent", "suffix-alone", "bool", "none", "list"],
)  # fmt: skip
def test_a_value_that_is_no_quantity_is_refused_naming_the_key(text: object) -> None:
    with pytest.raises(ValueError, match=r"scaleUp\.tolerance: a quantity"):
        quantity(text, "scaleUp.tolerance")


def test_what_the_behavior_leaves_out_is_the_api_servers_default() -> None:
    empty = behavior({})
    assert (empty.scale_up, empty.scale_down) == (DEFAULT_BEHAVIOR.scale_up,
                                                  DEFAULT_BEHAVIOR.scale_down)  # fmt: skip
    only = behavior({"scaleUp": {"tolerance": "50m"}, "scaleDown": {"selectPolicy": "Disabled"}})
    assert only.scale_up == Rules(0.0, DEFAULT_BEHAVIOR.scale_up.policies, "Max", 0.05)
    assert only.scale_down.select == "Disabled"
    assert only.scale_down.tolerance == 0.1
    assert only.scale_down.stabilization_window_s == 300.0


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"scaleUp": {"policies": [{"type": "Pod", "value": 1, "periodSeconds": 15}]}},
         r"scaleUp\.policies\[0\]\.type"),
        ({"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}},
         r"scaleUp\.policies\[0\]\.value"),
        ({"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}},
         r"scaleDown\.policies\[0\]\.periodSeconds"),
        ({"scaleDown": {"policies": "Pods"}}, r"scaleDown\.policies"),
        ({"scaleDown": {"stabilizationWindowSeconds": 3601}},
         r"scaleDown\.stabilizationWindowSeconds"),
        ({"scaleUp": {"selectPolicy": "max"}}, r"scaleUp\.selectPolicy"),
        ({"scaleUp": {"tolerance": "-0.1"}}, r"scaleUp\.tolerance: 0 or more"),
        ({"scaleDown": {"tolerance": "ten"}}, r"scaleDown\.tolerance: a quantity"),
    ],
    ids=["policy-type", "policy-value", "policy-period", "policies-not-a-list", "window",
         "select", "negative-tolerance", "tolerance-not-a-quantity"],
)  # fmt: skip
def test_a_bad_behavior_is_refused_naming_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        behavior(raw)


def test_another_manifest_is_read_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "scaledobject.yaml"
    path.write_text(
        "spec:\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n"
        "        scaleUp:\n          tolerance: 20m\n          policies:\n"
        "            - {type: Percent, value: 50, periodSeconds: 30}\n"
    )
    loaded = load(path)
    assert loaded.scale_up == Rules(0.0, (Policy("Percent", 50, 30.0),), "Max", 0.02)
    assert loaded.scale_down == DEFAULT_BEHAVIOR.scale_down
    path.write_text("spec:\n  minReplicaCount: 1\n")
    assert load(path).scale_up == DEFAULT_BEHAVIOR.scale_up  # no advanced section at all

"""The ScaledObject's HPA behavior, read from manifests/base/autoscaling/scaledobject.yaml.

One source of truth: the demo's and the e2e run's emulated HPAs scale as the manifest
says. `SCALED_OBJECT_BEHAVIOR` is that behavior, read once when first asked for (a
module that only imports this one reads no file). `behavior()` turns
the manifest's `advanced.horizontalPodAutoscalerConfig.behavior` into `harness.hpa`'s
rules, filling what it leaves out as the API server does (scaleUp: no window, 100 % or
4 pods per 15 s; scaleDown: a 300 s window, 100 % per 15 s; `selectPolicy` Max;
`tolerance` the controller's 0.1). Quantities such as `tolerance: "0.05"` or `50m`
are read as Kubernetes reads them. A value it cannot use is a `ValueError` naming the key.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import yaml

from harness.hpa import DEFAULT_BEHAVIOR, TOLERANCE, Behavior, Policy, PolicyKind, Rules, Select

MANIFEST = Path(__file__).resolve().parents[1] / "manifests/base/autoscaling/scaledobject.yaml"
NAME = "the ScaledObject's behavior"
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?")
_SUFFIXES = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
    "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
_POLICY_KINDS: tuple[PolicyKind, ...] = ("Pods", "Percent")
_SELECTS: tuple[Select, ...] = ("Max", "Min", "Disabled")


def quantity(value: object, key: str) -> float:
    """A Kubernetes quantity (`0.05`, `"0.05"`, `"50m"`, `"1.5k"`, `"5e-2"`) as a float."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{key}: a quantity such as 0.05 or 50m, not {value!r}")
    number, suffix = match.group(1), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return float(number + suffix)
    return float(number) * _SUFFIXES[suffix]


def _whole(value: object, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key}: a whole number from {low} to {high}, not {value!r}")
    return value


def _policy(raw: object, key: str) -> Policy:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{key}: a mapping with type, value and periodSeconds, not {raw!r}")
    kind = raw.get("type")
    if kind not in _POLICY_KINDS:
        raise ValueError(f"{key}.type: Pods or Percent, not {kind!r}")
    value = _whole(raw.get("value"), f"{key}.value", 1, 2**31 - 1)
    period_s = _whole(raw.get("periodSeconds"), f"{key}.periodSeconds", 1, 1800)
    return Policy(cast(PolicyKind, kind), value, float(period_s))


def rules(raw: Mapping[str, Any] | None, key: str, default: Rules) -> Rules:
    """One direction (`scaleUp` or `scaleDown`); what it leaves out, from `default`."""
    raw = raw or {}
    window = raw.get("stabilizationWindowSeconds")
    select = raw.get("selectPolicy", "Max")
    if select not in _SELECTS:
        raise ValueError(f"{key}.selectPolicy: Max, Min or Disabled, not {select!r}")
    policies = raw.get("policies")
    if policies is not None and not isinstance(policies, list):
        raise ValueError(f"{key}.policies: a list, not {policies!r}")
    tolerance = raw.get("tolerance")
    return Rules(
        stabilization_window_s=default.stabilization_window_s
        if window is None
        else float(_whole(window, f"{key}.stabilizationWindowSeconds", 0, 3600)),
        policies=default.policies
        if policies is None
        else tuple(_policy(p, f"{key}.policies[{i}]") for i, p in enumerate(policies)),
        select=cast(Select, select),
        tolerance=TOLERANCE if tolerance is None else _tolerance(tolerance, f"{key}.tolerance"),
    )


def _tolerance(value: object, key: str) -> float:
    tolerance = quantity(value, key)
    if not tolerance >= 0:
        raise ValueError(f"{key}: 0 or more, not {value!r}")
    return tolerance


def behavior(raw: Mapping[str, Any], name: str = NAME) -> Behavior:
    """An HPA `behavior` mapping (`scaleUp`, `scaleDown`) as `harness.hpa`'s Behavior."""
    return Behavior(
        name,
        scale_up=rules(raw.get("scaleUp"), "scaleUp", DEFAULT_BEHAVIOR.scale_up),
        scale_down=rules(raw.get("scaleDown"), "scaleDown", DEFAULT_BEHAVIOR.scale_down),
    )


def load(path: Path = MANIFEST) -> Behavior:
    """The behavior a ScaledObject manifest gives its HPA."""
    document = yaml.safe_load(path.read_text())
    config = document["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
    return behavior(config.get("behavior") or {})


SCALED_OBJECT_BEHAVIOR: Behavior  # bound on first use, by __getattr__ below


@functools.cache
def scaled_object_behavior() -> Behavior:
    """The project's ScaledObject's behavior, read once."""
    return load()


def __getattr__(name: str) -> Behavior:
    """`SCALED_OBJECT_BEHAVIOR`: the manifest's behavior, read once when first asked for."""
    if name != "SCALED_OBJECT_BEHAVIOR":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return scaled_object_behavior()

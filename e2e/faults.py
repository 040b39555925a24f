"""Faults on the direct path: the scaler goes away (its Deployment scaled to 0), KEDA
must apply the ScaledObject's fallback after `failureThreshold` failed polls; the
scaler comes back, KEDA must leave the fallback."""

from __future__ import annotations

import json
import time
from typing import Any

from e2e.cluster import NAMESPACES, Cluster, Say, scale

SCALER = "rating-scaler"
SCALER_REPLICAS = 2  # as in manifests/base
MARGIN_S = 15.0
RECOVER_TIMEOUT_S = 120.0


def fallback_bound_s(cluster: Cluster, namespace: str) -> float:
    """failureThreshold x pollingInterval + one HPA sync, from the ScaledObject itself."""
    spec = cluster.observer.scaled_object(namespace)["spec"]
    threshold = float(spec["fallback"]["failureThreshold"])
    return threshold * float(spec.get("pollingInterval", 30)) + cluster.plane.hpa_sync_s


def wait_condition(cluster: Cluster, namespace: str, wanted: str, timeout_s: float) -> float | None:
    """Seconds until the ScaledObject's Fallback condition is `wanted`, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        cluster.procs.check_all()
        if cluster.observer.condition(namespace, "Fallback") == wanted:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def seconds(value: float | None) -> str:
    return "never (timed out)" if value is None else f"{value:.1f} s"


def run(cluster: Cluster, say: Say) -> dict[str, Any]:
    namespace = NAMESPACES["direct"]
    bound_s = fallback_bound_s(cluster, namespace)
    say(f"\nFault: {SCALER} scaled to 0; fallback expected within {bound_s:g} s")
    scale(cluster, namespace, SCALER, 0)
    fallback_s = wait_condition(cluster, namespace, "True", bound_s + MARGIN_S)
    say(f"  Fallback condition True after {seconds(fallback_s)}")
    say(f"Recovery: {SCALER} scaled back to {SCALER_REPLICAS}")
    scale(cluster, namespace, SCALER, SCALER_REPLICAS)
    recovered_s = wait_condition(cluster, namespace, "False", RECOVER_TIMEOUT_S)
    say(f"  Fallback condition False after {seconds(recovered_s)}")
    timings = {"fallback_s": fallback_s, "fallback_bound_s": bound_s, "recovered_s": recovered_s}
    (cluster.log_dir.parent / "faults.json").write_text(json.dumps(timings, indent=2) + "\n")
    return {
        "fallback_applied": fallback_s is not None and fallback_s <= bound_s + MARGIN_S,
        "recovered": recovered_s is not None,
    }


def problems(summary: dict[str, Any]) -> list[str]:
    found = []
    if not summary["fallback_applied"]:
        found.append("KEDA did not apply the fallback after the scaler went away")
    if not summary["recovered"]:
        found.append("KEDA did not leave the fallback after the scaler came back")
    return found

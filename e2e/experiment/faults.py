"""Faults on the direct path, after the step, and the external-push check.

1. The scaler stops (its Deployment scaled to 0). The fallback is expected after
   failureThreshold failed polls. KEDA v2.20.2 does not apply it: the external
   scaler's GetMetricSpec fails first, KEDA drops the metric and never counts a
   failure (kedacore/keda#8056). What must hold instead: the HPA keeps the replicas
   it has (it cannot read the metric, so it does not scale down).
2. The scaler runs but loses its pods (the headless rating-api-admin Service deleted,
   so its DNS name is gone): GetMetricSpec still answers with the last target and
   GetMetrics answers UNAVAILABLE, which KEDA counts: the fallback applies.
After each, the object is put back and KEDA must recover (Fallback False, the HPA
reading the metric again). Timings go to out/e2e/faults.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from e2e.cluster.up import NAMESPACES, OVERLAYS, ROOT, Cluster, Say, endpoints_of, scale
from e2e.experiment.balanced_load import Load, Phase

SCALER = "rating-scaler"
SCALER_REPLICAS = 2  # as in manifests/base
MARGIN_S = 15.0
RECOVER_TIMEOUT_S = 120.0
PUSH_POLLING_S = 300
NAMESPACE = NAMESPACES["direct"]


def fallback_bound_s(cluster: Cluster) -> float:
    """failureThreshold x pollingInterval + one HPA sync, from the ScaledObject itself."""
    spec = cluster.observer.scaled_object(NAMESPACE)["spec"]
    threshold = float(spec["fallback"]["failureThreshold"])
    return threshold * float(spec.get("pollingInterval", 30)) + cluster.plane.hpa_sync_s


def wait_until(cluster: Cluster, check: Callable[[], bool], timeout_s: float) -> float | None:
    """Seconds until `check()` holds, or None when `timeout_s` passed first."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        cluster.procs.check_all()
        if check():
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def condition_is(cluster: Cluster, kind: str, wanted: str) -> Callable[[], bool]:
    return lambda: cluster.observer.condition(NAMESPACE, kind) == wanted


def healthy(cluster: Cluster) -> Callable[[], bool]:
    """No fallback, and the HPA reads the metric again."""

    def check() -> bool:
        no_fallback = cluster.observer.condition(NAMESPACE, "Fallback") != "True"
        return no_fallback and cluster.observer.path_state(NAMESPACE).hpa_metric is not None

    return check


def seconds(value: float | None) -> str:
    return "never (timed out)" if value is None else f"{value:.1f} s"


def scaler_stopped(cluster: Cluster, say: Say, bound_s: float) -> dict[str, Any]:
    before = cluster.observer.path_state(NAMESPACE).spec
    say(f"\nFault 1: {SCALER} scaled to 0 (fallback expected within {bound_s:g} s)")
    scale(cluster, NAMESPACE, SCALER, 0)
    fallback_s = wait_until(cluster, condition_is(cluster, "Fallback", "True"), bound_s + MARGIN_S)
    after = cluster.observer.path_state(NAMESPACE).spec
    say(f"  Fallback condition True after {seconds(fallback_s)}; replicas {before} -> {after}")
    if fallback_s is None:
        say("  (KEDA v2.20.2 drops an unreachable external scaler's metric: kedacore/keda#8056)")
    scale(cluster, NAMESPACE, SCALER, SCALER_REPLICAS)
    recovered_s = wait_until(cluster, healthy(cluster), RECOVER_TIMEOUT_S)
    say(f"  {SCALER} back to {SCALER_REPLICAS}: healthy again after {seconds(recovered_s)}")
    return {"fallback_s": fallback_s, "replicas_before": before, "replicas_after": after} | {
        "recovered_s": recovered_s
    }


def pods_lost(cluster: Cluster, say: Say, bound_s: float) -> dict[str, Any]:
    say(f"\nFault 2: Service rating-api-admin deleted (fallback expected within {bound_s:g} s)")
    cluster.kubectl("delete", "service", "rating-api-admin", "-n", NAMESPACE, log="faults")
    fallback_s = wait_until(cluster, condition_is(cluster, "Fallback", "True"), bound_s + MARGIN_S)
    say(f"  Fallback condition True after {seconds(fallback_s)}")
    cluster.apply("-k", str(ROOT / "manifests" / "overlays" / OVERLAYS["direct"]))
    recovered_s = wait_until(cluster, healthy(cluster), RECOVER_TIMEOUT_S)
    say(f"  manifests applied again: healthy after {seconds(recovered_s)}")
    return {"fallback_s": fallback_s, "recovered_s": recovered_s}


def push(cluster: Cluster, say: Say) -> float | None:
    """Switch the trigger to `external-push` with a 300 s pollingInterval, wait until
    KEDA sees no demand, then send a little load: the seconds until the ScaledObject
    turns Active, which only a StreamIsActive `true` can do that fast."""
    patch = [
        {"op": "replace", "path": "/spec/triggers/0/type", "value": "external-push"},
        {"op": "replace", "path": "/spec/pollingInterval", "value": PUSH_POLLING_S},
    ]
    cluster.kubectl(
        *("patch", "scaledobject", "rating-api", "-n", NAMESPACE, "--type=json"),
        f"--patch={json.dumps(patch)}",
        log="faults",
    )
    say(f"\nPush: trigger switched to external-push, pollingInterval {PUSH_POLLING_S} s")
    if wait_until(cluster, condition_is(cluster, "Active", "False"), 60.0) is None:
        say("  the ScaledObject did not turn inactive while idle: push not measured")
        return None
    phases = [Phase("push", 0.0, 20.0, 5.0)]
    load = Load(endpoints_of(cluster, NAMESPACE), phases, time.monotonic()).start()
    active_s = wait_until(cluster, condition_is(cluster, "Active", "True"), 30.0)
    load.thread.join(timeout=25.0)
    say(f"  Active after {seconds(active_s)} of load (by polling alone: up to {PUSH_POLLING_S} s)")
    return active_s


def run(cluster: Cluster, say: Say) -> dict[str, Any]:
    bound_s = fallback_bound_s(cluster)
    stopped = scaler_stopped(cluster, say, bound_s)
    lost = pods_lost(cluster, say, bound_s)
    push_s = push(cluster, say)
    timings = {"fallback_bound_s": bound_s, "scaler_stopped": stopped, "pods_lost": lost}
    timings["push_active_s"] = push_s
    (cluster.log_dir.parent / "faults.json").write_text(json.dumps(timings, indent=2) + "\n")
    return timings


def summary_keys(timings: dict[str, Any]) -> dict[str, bool]:
    """summary.json's view: the fault it names is the scaler stopping."""
    stopped = timings["scaler_stopped"]
    return {
        "fallback_applied": stopped["fallback_s"] is not None,
        "recovered": stopped["recovered_s"] is not None,
    }


def problems(timings: dict[str, Any]) -> list[str]:
    stopped, lost = timings["scaler_stopped"], timings["pods_lost"]
    found = []
    if stopped["replicas_after"] < stopped["replicas_before"]:
        found.append("the HPA scaled down while the scaler was away")
    if lost["fallback_s"] is None or lost["fallback_s"] > timings["fallback_bound_s"] + MARGIN_S:
        found.append("KEDA did not apply the fallback when the scaler answered UNAVAILABLE")
    if stopped["recovered_s"] is None or lost["recovered_s"] is None:
        found.append("KEDA did not recover after a fault was undone")
    if timings["push_active_s"] is None:
        found.append("external-push: the ScaledObject did not turn Active on a pushed `true`")
    return found

"""Voluntary disruptions on the direct path, after the faults: a drain's eviction and a
rolling restart, each as a cluster operator would cause it.

1. One rating-scaler pod evicted through the Eviction API (a policy/v1 Eviction, what
   `kubectl drain` sends). With both replicas ready the scaler's PodDisruptionBudget
   allows one disruption, so the API server must accept it. What the budget allows is
   computed by the disruption controller in the run's kube-controller-manager: the run
   first waits until that controller has processed the budget. Then the Deployment
   must have both replicas ready again.
2. A rolling restart of rating-api under load: the pod template's
   `kubectl.kubernetes.io/restartedAt` annotation set, as `kubectl rollout restart`
   does, while a steady load goes on, until the rollout is complete and every old pod
   has exited (preStop sleep, shutdown delay, drain). The load learns of endpoint
   changes 2 s late, as behind kube-proxy. No request may be lost, find no pod
   listening, or get a 5xx.

Results go to out/e2e/disruptions.json and summary.json's `disruptions`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from e2e.cluster.kube import Json, as_json, has_condition
from e2e.cluster.up import NAMESPACES, Cluster, Say, endpoints_of
from e2e.experiment.balanced_load import Load, Phase, lagging
from e2e.experiment.faults import SCALER, SCALER_REPLICAS, healthy, seconds, wait_until

NAMESPACE = NAMESPACES["direct"]
API = "rating-api"
RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
BUDGET_TIMEOUT_S = 60.0
REPLACED_TIMEOUT_S = 90.0
# Within what the fleet serves: for 50/s the HPA keeps at least ceil(50 / 8) = 7 pods,
# which refill 70 tokens/s; refusals would only blur what the restart itself costs.
RESTART_LOAD_PER_S = 50.0
RESTART_LEAD_S = 3.0  # the load on the old pods alone first
RESTART_TIMEOUT_S = 180.0
RESTART_TAIL_S = 2.0  # the load on the new pods alone last
# The load learns of endpoint changes this late, as behind kube-proxy or an ingress: a
# pod that stopped listening as soon as it began terminating would be sent requests
# (refused: `unreachable`), which the preStop sleep is there to prevent.
ENDPOINT_LAG_S = 2.0


def budget_view(pdb: Json) -> dict[str, Any]:
    """What the disruption controller computed for a PodDisruptionBudget."""
    status = pdb.get("status") or {}
    observed = status.get("observedGeneration")
    return {
        "spec": {k: v for k, v in pdb["spec"].items() if k in ("minAvailable", "maxUnavailable")},
        "processed": observed is not None and observed >= pdb["metadata"]["generation"],
        "disruptions_allowed": status.get("disruptionsAllowed"),
        "current_healthy": status.get("currentHealthy"),
        "desired_healthy": status.get("desiredHealthy"),
        "expected_pods": status.get("expectedPods"),
    }


def pods(cluster: Cluster, app: str) -> list[Json]:
    found = client.CoreV1Api(cluster.api).list_namespaced_pod(
        NAMESPACE, label_selector=f"app.kubernetes.io/name={app}"
    )
    return list(as_json(cluster.api, found).get("items") or [])


def is_ready(pod: Json) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and has_condition(pod, "Ready")


def ready_names(cluster: Cluster, app: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in pods(cluster, app) if is_ready(p))


def scaler_budget(cluster: Cluster) -> dict[str, Any]:
    pdb = client.PolicyV1Api(cluster.api).read_namespaced_pod_disruption_budget(SCALER, NAMESPACE)
    return budget_view(as_json(cluster.api, pdb))


def evict(cluster: Cluster, name: str) -> str:
    """`evicted`, or why the API server refused (HTTP 429 when the budget forbids it)."""
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=NAMESPACE))
    try:
        client.CoreV1Api(cluster.api).create_namespaced_pod_eviction(name, NAMESPACE, body)
    except client.ApiException as error:
        reason = (json.loads(error.body or "{}") or {}).get("message", error.reason)
        return f"refused: HTTP {error.status}: {reason}"
    return "evicted"


def allows_one(budget: dict[str, Any]) -> bool:
    return bool(budget["processed"] and (budget["disruptions_allowed"] or 0) >= 1)


def evict_scaler(cluster: Cluster, say: Say) -> dict[str, Any]:
    say(f"\nEviction: one {SCALER} pod through the Eviction API, as `kubectl drain` does")
    budget_s = wait_until(cluster, lambda: allows_one(scaler_budget(cluster)), BUDGET_TIMEOUT_S)
    budget = scaler_budget(cluster)
    say(f"  PodDisruptionBudget {SCALER}: {budget} (waited {seconds(budget_s)})")
    ready = ready_names(cluster, SCALER)
    victim = ready[0] if ready else None
    result = evict(cluster, victim) if victim else f"not tried: no {SCALER} pod is ready"
    say(f"  {victim}: {result}")

    def replaced() -> bool:
        ready = ready_names(cluster, SCALER)
        return len(ready) >= SCALER_REPLICAS and victim not in ready

    replaced_s = wait_until(cluster, replaced, REPLACED_TIMEOUT_S) if result == "evicted" else None
    say(f"  {SCALER_REPLICAS} {SCALER} replicas ready again after {seconds(replaced_s)}")
    return {
        "budget": budget,
        "pod": victim,
        "result": result,
        "replaced_s": replaced_s,
        "keda_healthy_after": healthy(cluster)(),
    }


def rolled_out(deployment: Json) -> bool:
    """As `kubectl rollout status`: the new template everywhere, and every pod available."""
    spec, status = deployment["spec"], deployment.get("status") or {}
    wanted = spec.get("replicas", 1)
    counts = [status.get(key, 0) for key in ("updatedReplicas", "replicas", "availableReplicas")]
    observed = status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
    return bool(observed) and counts == [wanted] * 3


def read_deployment(cluster: Cluster) -> Json:
    found = client.AppsV1Api(cluster.api).read_namespaced_deployment(API, NAMESPACE)
    return as_json(cluster.api, found)


def restart(cluster: Cluster) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: stamp}}}}}
    client.AppsV1Api(cluster.api).patch_namespaced_deployment(API, NAMESPACE, body)


def rolling_restart(cluster: Cluster, say: Say) -> dict[str, Any]:
    old = {p["metadata"]["name"] for p in pods(cluster, API)}
    replicas = read_deployment(cluster)["spec"].get("replicas")
    say(
        f"\nRolling restart: {API} ({replicas} pods) under {RESTART_LOAD_PER_S:g} req/s, "
        f"endpoints seen {ENDPOINT_LAG_S:g} s late, as `kubectl rollout restart` does"
    )
    phases = [Phase("restart", 0.0, RESTART_TIMEOUT_S, RESTART_LOAD_PER_S)]
    started = time.monotonic()
    endpoints = lagging(endpoints_of(cluster, NAMESPACE), ENDPOINT_LAG_S)
    load = Load(endpoints, phases, started).start()
    time.sleep(RESTART_LEAD_S)
    restart(cluster)
    patched = time.monotonic()
    limit_s = RESTART_TIMEOUT_S - RESTART_LEAD_S - RESTART_TAIL_S
    rolled_s = wait_until(cluster, lambda: rolled_out(read_deployment(cluster)), limit_s)
    left = lambda: not old & {p["metadata"]["name"] for p in pods(cluster, API)}  # noqa: E731
    gone = wait_until(cluster, left, max(1.0, limit_s - (time.monotonic() - patched)))
    gone_s = None if gone is None else time.monotonic() - patched
    time.sleep(RESTART_TAIL_S)
    load.stop()
    counts = load.tally.totals()
    result = {
        "replicas_before": replicas,
        "replicas_after": read_deployment(cluster)["spec"].get("replicas"),
        "load_per_s": RESTART_LOAD_PER_S,
        "endpoint_lag_s": ENDPOINT_LAG_S,
        "load_s": round(time.monotonic() - started, 1),
        "rolled_out_s": rolled_s,
        "old_pods_gone_s": gone_s,
        "sent": sum(counts.values()),
        "answered": counts.get("answered", 0),
        "refused": counts.get("refused", 0),
        "lost": counts.get("lost", 0),
        "server_errors": load.tally.server_errors(),
        "other_failures": {k: v for k, v in counts.items() if k not in ("answered", "refused")},
    }
    say(
        f"  rolled out after {seconds(rolled_s)}, old pods gone after {seconds(gone_s)}; "
        f"sent {result['sent']}: answered {result['answered']}, 429 {result['refused']}, "
        f"lost {result['lost']}, 5xx {result['server_errors']}, "
        f"other failures {result['other_failures']}"
    )
    return result


def run(cluster: Cluster, say: Say) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "scaler_eviction": evict_scaler(cluster, say),
        "rolling_restart": rolling_restart(cluster, say),
    }
    results["seconds"] = round(time.monotonic() - started, 1)
    (cluster.log_dir.parent / "disruptions.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def problems(results: dict[str, Any]) -> list[str]:
    eviction, restarted = results["scaler_eviction"], results["rolling_restart"]
    found = []
    if not eviction["budget"]["processed"]:
        found.append(
            f"PodDisruptionBudget {SCALER} was never processed: is the disruption controller "
            "running in kube-controller-manager?"
        )
    if eviction["result"] != "evicted":
        found.append(f"evicting one of {SCALER_REPLICAS} {SCALER} pods: {eviction['result']}")
    elif eviction["replaced_s"] is None:
        found.append(
            f"{SCALER} did not get {SCALER_REPLICAS} ready replicas back after the eviction"
        )
    if restarted["rolled_out_s"] is None or restarted["old_pods_gone_s"] is None:
        found.append(
            f"the rolling restart of {API} did not complete within {RESTART_TIMEOUT_S:g} s"
        )
    if restarted["answered"] == 0:
        found.append(f"no request was answered during the rolling restart of {API}")
    if restarted["lost"]:
        found.append(f"rolling restart: {restarted['lost']} requests got no answer (lost)")
    if restarted["server_errors"]:
        found.append(f"rolling restart: {restarted['server_errors']} answers were 5xx")
    refused = restarted.get("other_failures", {}).get("unreachable", 0)
    if refused:
        found.append(f"rolling restart: {refused} requests found no pod listening (unreachable)")
    return found


def report_lines(results: dict[str, Any]) -> list[str]:
    eviction, restarted = results["scaler_eviction"], results["rolling_restart"]
    return [
        f"eviction of {eviction['pod']}: {eviction['result']}, {SCALER_REPLICAS} ready again "
        f"after {seconds(eviction['replaced_s'])}",
        f"rolling restart of {restarted['replicas_before']} pods under "
        f"{restarted['load_per_s']:g} req/s: {restarted['answered']} answered, lost "
        f"{restarted['lost']}, 5xx {restarted['server_errors']}, done after "
        f"{seconds(restarted['old_pods_gone_s'])} ({results['seconds']:g} s in all)",
    ]

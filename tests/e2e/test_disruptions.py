"""What the disruption checks read from the API objects, and when they fail the run."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.experiment.disruptions import (
    allows_one,
    budget_view,
    is_ready,
    problems,
    report_lines,
    rolled_out,
)


def pdb(generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    spec = {"minAvailable": 1, "selector": {}, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    found = {"metadata": {"generation": generation}, "spec": spec}
    return found | ({"status": status} if status is not None else {})


TWO_HEALTHY = {
    "observedGeneration": 1,
    "disruptionsAllowed": 1,
    "currentHealthy": 2,
    "desiredHealthy": 1,
    "expectedPods": 2,
}


@pytest.mark.parametrize(
    ("budget", "processed", "allowed"),
    [
        pytest.param(pdb(1, TWO_HEALTHY), True, True, id="two-healthy-allows-one"),
        pytest.param(pdb(1, TWO_HEALTHY | {"disruptionsAllowed": 0}), True, False, id="none"),
        pytest.param(pdb(1, None), False, False, id="never-processed"),
        pytest.param(pdb(2, TWO_HEALTHY), False, False, id="older-generation"),
    ],
)
def test_a_budget_allows_an_eviction_once_the_controller_processed_it(
    budget: dict[str, Any], processed: bool, allowed: bool
) -> None:
    view = budget_view(budget)
    assert view["processed"] is processed
    assert view["spec"] == {"minAvailable": 1}
    assert allows_one(view) is allowed


def deployment(wanted: int, generation: int = 2, **status: int) -> dict[str, Any]:
    done = {"observedGeneration": 2, "updatedReplicas": 16, "replicas": 16}
    done |= {"availableReplicas": 16}
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": wanted},
        "status": done | status,
    }


@pytest.mark.parametrize(
    ("found", "done"),
    [
        pytest.param(deployment(16), True, id="complete"),
        pytest.param(deployment(16, generation=3), False, id="patch-not-seen"),
        pytest.param(deployment(16, updatedReplicas=12), False, id="old-pods-left"),
        pytest.param(deployment(16, replicas=20), False, id="surge-pods-left"),
        pytest.param(deployment(16, availableReplicas=15), False, id="new-pod-not-ready"),
        pytest.param(deployment(12, updatedReplicas=12, replicas=12), False, id="scaled-down"),
    ],
)
def test_a_rollout_is_complete_as_kubectl_rollout_status_says(
    found: dict[str, Any], done: bool
) -> None:
    assert rolled_out(found) is done


def results(**changes: Any) -> dict[str, Any]:
    eviction: dict[str, Any] = {"budget": budget_view(pdb(1, TWO_HEALTHY)), "result": "evicted"}
    eviction |= {"replaced_s": 6.5}
    restart: dict[str, Any] = {"rolled_out_s": 30.0, "old_pods_gone_s": 41.0, "answered": 900}
    restart |= {"lost": 0, "server_errors": 0}
    for key, value in changes.items():
        part, _, name = key.partition("__")
        (eviction if part == "eviction" else restart)[name] = value
    return {"scaler_eviction": eviction, "rolling_restart": restart}


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param({}, None, id="all-well"),
        pytest.param(
            {"eviction__result": "refused: HTTP 429: Cannot evict pod"}, "429", id="refused"
        ),
        pytest.param(
            {"eviction__budget": budget_view(pdb(1, None))},
            "disruption controller",
            id="budget-never-processed",
        ),
        pytest.param({"eviction__replaced_s": None}, "ready replicas", id="not-replaced"),
        pytest.param({"restart__rolled_out_s": None}, "did not complete", id="rollout-stuck"),
        pytest.param({"restart__old_pods_gone_s": None}, "did not complete", id="old-pods-stay"),
        pytest.param({"restart__lost": 3}, "3 requests got no answer", id="lost"),
        pytest.param({"restart__server_errors": 2}, "2 answers were 5xx", id="5xx"),
        pytest.param({"restart__answered": 0}, "no request was answered", id="no-load"),
        pytest.param(
            {"restart__other_failures": {"unreachable": 4}},
            "4 requests found no pod listening",
            id="unreachable",
        ),
        pytest.param({"restart__other_failures": {"timeout": 1}}, None, id="timeout-reported"),
    ],
)
def test_the_run_fails_on_a_refused_eviction_or_a_restart_that_loses_requests(
    changes: dict[str, Any], says: str | None
) -> None:
    found = problems(results(**changes))
    if says is None:
        assert found == []
    else:
        assert len(found) == 1 and says in found[0], found


def test_the_report_names_the_eviction_and_what_the_restart_lost() -> None:
    found = results()
    found["scaler_eviction"] |= {"pod": "rating-scaler-abc"}
    found["rolling_restart"] |= {"replicas_before": 16, "load_per_s": 25.0, "lost": 2}
    found["rolling_restart"] |= {"server_errors": 1}
    found["seconds"] = 55.0
    eviction, restart = report_lines(found)
    assert eviction.startswith("eviction of rating-scaler-abc: evicted")
    assert "6.5 s" in eviction
    assert "16 pods under 25 req/s: 900 answered, lost 2, 5xx 1" in restart
    assert restart.endswith("after 41.0 s (55 s in all)")


def pod(ready: str, deleting: bool = False) -> dict[str, Any]:
    metadata = {"name": "rating-scaler-1"} | ({"deletionTimestamp": "now"} if deleting else {})
    conditions = [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": ready}]
    return {"metadata": metadata, "status": {"conditions": conditions}}


@pytest.mark.parametrize(
    ("found", "ready"),
    [
        pytest.param(pod("True"), True, id="ready"),
        pytest.param(pod("False"), False, id="not-ready"),
        pytest.param(pod("True", deleting=True), False, id="terminating"),
    ],
)
def test_a_terminating_pod_is_not_counted_ready(found: dict[str, Any], ready: bool) -> None:
    assert is_ready(found) is ready

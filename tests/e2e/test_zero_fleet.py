"""The fleet at zero's figures (e2e.experiment.zero_fleet): the activators' counters
read from their /metrics text, a pod's start from its API timestamps, and what fails
the run."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.experiment import zero_fleet as zero

METRICS = """\
# HELP openclaw_rating_activator_held_total Requests held for a pod.
# TYPE openclaw_rating_activator_held_total counter
openclaw_rating_activator_held_total 12.0
openclaw_rating_activator_held_created 1.7e+09
openclaw_rating_activator_forwarded_total{held="true"} 11.0
openclaw_rating_activator_forwarded_total{held="false"} 0.0
openclaw_rating_activator_timed_out_total 1.0
"""


def test_counters_are_read_by_name_and_labels() -> None:
    found = zero.parse_counters(METRICS)
    assert found["held_total"] == 12.0
    assert found['forwarded_total{held="true"}'] == 11.0
    assert found[zero.NOT_HELD] == 0.0
    assert found["timed_out_total"] == 1.0


def pod(created: str, ready_at: str | None) -> dict[str, Any]:
    conditions = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": created}]
    if ready_at is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": ready_at})
    return {"metadata": {"creationTimestamp": created}, "status": {"conditions": conditions}}


@pytest.mark.parametrize(
    ("created", "ready_at", "seconds"),
    [
        ("2026-12-06T06:40:01+00:00", "2026-12-06T06:40:05+00:00", 4.0),
        ("2026-12-06T06:40:01Z", "2026-12-06T06:41:00Z", 59.0),
        ("2026-12-06T06:40:01Z", None, None),
    ],
    ids=["offset", "zulu", "not-ready"],
)
def test_pod_ready_is_creation_to_the_ready_condition(
    created: str, ready_at: str | None, seconds: float | None
) -> None:
    assert zero.pod_ready_s(pod(created, ready_at)) == seconds


def wakeup(name: str, first_s: float | None = 3.0, lost: int = 0, fives: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "first_answer_s": first_s,
        "first_status": 200,
        "pod_ready_s": 4.0,
        "held": 1,
        "forwarded": 1,
        "timed_out": 0,
        "sent": 1,
        "answered_200": 1,
        "5xx": fives,
        "lost": lost,
        "errors": [],
    }


def passing() -> dict[str, Any]:
    tally = {"sent": 10, "answered_200": 10, "5xx": 0, "lost": 0, "errors": []}
    return {
        "wakeups": [wakeup("one"), wakeup("again"), wakeup("burst")],
        "through_activator_when_ready": 0,
        "steady": dict(tally),
        "scale_to_zero": dict(tally),
        "idle_stays_idle": {"watched_s": 35.0, "bound_s": 30.0, "max_replicas": 0},
    }


def test_a_run_that_held_everything_passes() -> None:
    assert zero.problems(passing()) == []
    assert zero.problems(None) == []


def test_a_slow_first_answer_is_reported_not_failed() -> None:
    found = passing()
    for slow in found["wakeups"][:2]:
        slow["first_answer_s"] = 30.0
    found |= zero.medians(found["wakeups"])
    assert zero.problems(found) == []
    assert any("NOT within" in line for line in zero.report_lines(found))


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda f: f["wakeups"].pop(), "2 wake-ups"),
        (lambda f: f["wakeups"][1].update(lost=1), "again: 1 lost"),
        (lambda f: f["wakeups"][2].update({"5xx": 3}), "3 5xx"),
        (lambda f: f["wakeups"][0].update(first_answer_s=None), "no answer from a pod"),
        (lambda f: f.update(through_activator_when_ready=2), "2 requests through"),
        (lambda f: f["scale_to_zero"].update(answered_200=9), "9 of 10 answered 200"),
        (lambda f: f["idle_stays_idle"].update(max_replicas=4), "went to 4 replicas"),
        (lambda f: f.update(error="zero: back at zero: not within 180 s"), "not within 180 s"),
    ],
    ids=["too-few", "lost", "5xx", "no-answer", "steady", "scale-down", "idle", "timeout"],
)
def test_what_fails_the_run(change: Any, fragment: str) -> None:
    found = passing()
    change(found)
    assert any(fragment in problem for problem in zero.problems(found)), zero.problems(found)


@pytest.mark.parametrize(
    ("status", "answered_s", "expected"),
    [(200, 12.5, 2.5), (429, 11.0, 1.0), (503, 40.0, None), (None, None, None)],
    ids=["ok", "bucket-spent", "timed-out", "lost"],
)
def test_the_first_answer_is_one_from_a_pod(
    status: int | None, answered_s: float | None, expected: float | None
) -> None:
    sent = [zero.Sent(10.0, status, answered_s), zero.Sent(10.01, 200, 12.0)]
    assert zero.first_answer(sent) == {"first_answer_s": expected, "first_status": status}


def test_medians_leave_out_what_was_not_measured() -> None:
    wakeups = [wakeup("a", 2.0), wakeup("b", None), wakeup("c", 6.0)]
    assert zero.medians(wakeups) == {"first_answer_median_s": 4.0, "pod_ready_median_s": 4.0}

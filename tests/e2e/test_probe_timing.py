"""Probe timing as kubelet runs it, on a fake clock: delays, periods, thresholds and the
startup probe gating readiness and liveness."""

from __future__ import annotations

import pytest

from e2e.podspec import Probe
from e2e.probe_timing import ContainerProbes, Schedule


def http(**fields: float) -> Probe:
    values = {"period_s": 1.0, "failure_threshold": 3, "success_threshold": 1} | fields
    return Probe(
        "httpGet",
        8080,
        initial_delay_s=float(values.get("initial_delay_s", 0.0)),
        period_s=float(values["period_s"]),
        failure_threshold=int(values["failure_threshold"]),
        success_threshold=int(values["success_threshold"]),
    )


def run(probes: ContainerProbes, results: dict[float, bool], until_s: float) -> list[float]:
    """Step a 0.05 s clock to `until_s`, answering each due probe with the result at the
    latest time in `results` not after now; returns the times the pod became ready."""
    ready_at: list[float] = []
    for tick in range(round(until_s / 0.05) + 1):
        now_s = round(tick * 0.05, 2)
        answer = results[max(t for t in results if t <= now_s)]
        while due := probes.due(now_s):  # a probe armed by another runs in the same instant
            if probes.record(due[0], answer, now_s).ready_changed and probes.ready:
                ready_at.append(now_s)
    return ready_at


def test_first_probe_runs_at_container_start_not_a_period_later() -> None:
    probes = ContainerProbes(
        startup=None, readiness=http(period_s=5.0), liveness=None, started_s=100.0
    )
    assert probes.due(100.0) and not probes.ready


def test_initial_delay_then_every_period_on_a_ticker() -> None:
    schedule = Schedule(http(initial_delay_s=2.0, period_s=5.0), passing=False)
    schedule.arm(100.0)
    assert not schedule.due(101.9) and schedule.due(102.0)
    schedule.record(False, 102.8)  # a slow probe does not move the next tick
    assert not schedule.due(106.9) and schedule.due(107.0)


def test_a_tick_missed_during_a_slow_probe_is_taken_at_once() -> None:
    schedule = Schedule(http(period_s=1.0), passing=False)
    schedule.arm(0.0)
    schedule.record(False, 2.5)
    assert schedule.due(2.5)


@pytest.mark.parametrize(
    ("results", "flips"),
    [
        ([True], [True]),
        ([False, False, False], [False, False, True]),
        ([False, False, True, False, False, False], [False, False, False, False, False, True]),
    ],
    ids=["one-success-passes", "three-failures-fail", "a-success-resets-the-failures"],
)
def test_thresholds_count_results_in_a_row(results: list[bool], flips: list[bool]) -> None:
    schedule = Schedule(http(failure_threshold=3), passing=not results[0])
    seen = [schedule.record(ok, float(i)) for i, ok in enumerate(results)]
    assert seen == flips


def test_success_threshold_needs_that_many_successes_in_a_row() -> None:
    schedule = Schedule(http(success_threshold=2), passing=False)
    assert [schedule.record(ok, 0.0) for ok in (True, False, True, True)] == [
        False,
        False,
        False,
        True,
    ]


def test_startup_gates_readiness_and_readiness_runs_as_soon_as_startup_passes() -> None:
    probes = ContainerProbes(
        startup=http(period_s=1.0, failure_threshold=30),
        readiness=http(period_s=5.0),
        liveness=http(period_s=10.0, initial_delay_s=5.0),
        started_s=0.0,
    )
    assert [s.probe.period_s for s in probes.due(0.0)] == [1.0]  # startup only
    ready_at = run(probes, {0.0: False, 0.7: True}, until_s=3.0)
    assert ready_at == [1.0]  # startup passes at 1.0 s, readiness in the same instant
    assert probes.startup is not None and probes.startup.next_s is None  # done for good
    assert probes.liveness is not None and probes.liveness.next_s == pytest.approx(6.0)


def test_without_startup_the_pod_is_ready_at_the_first_passing_tick() -> None:
    probes = ContainerProbes(
        startup=None, readiness=http(period_s=1.0), liveness=None, started_s=0.0
    )
    assert run(probes, {0.0: False, 0.6: True}, until_s=3.0) == [1.0]


@pytest.mark.parametrize("which", ["startup", "liveness"])
def test_a_failed_startup_or_liveness_probe_restarts_the_container(which: str) -> None:
    probes = ContainerProbes(
        startup=http(failure_threshold=2) if which == "startup" else None,
        readiness=None,
        liveness=http(failure_threshold=2) if which == "liveness" else None,
        started_s=0.0,
    )
    (schedule,) = probes.due(0.0)
    assert not probes.record(schedule, False, 0.0).restart
    assert probes.record(schedule, False, 1.0).restart


def test_readiness_failing_makes_the_pod_unready_without_a_restart() -> None:
    probes = ContainerProbes(
        startup=None, readiness=http(failure_threshold=2), liveness=None, started_s=0.0
    )
    assert run(probes, {0.0: True}, until_s=0.0) == [0.0]
    assert probes.readiness is not None
    probes.record(probes.readiness, False, 1.0)
    change = probes.record(probes.readiness, False, 2.0)
    assert change.ready_changed and not change.restart and not probes.ready


def test_sleep_until_the_next_probe_at_most_the_tick() -> None:
    probes = ContainerProbes(
        startup=None, readiness=http(period_s=5.0), liveness=None, started_s=0.0
    )
    assert probes.readiness is not None
    probes.record(probes.readiness, False, 0.0)
    assert probes.sleep_s(4.9, 0.25) == pytest.approx(0.1)
    assert probes.sleep_s(1.0, 0.25) == 0.25

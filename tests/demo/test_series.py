"""The demo's arithmetic: pod-seconds, the most pods, the right size and when it was
reached, the summary and its exact JSON keys."""

from __future__ import annotations

import json

import pytest

from demo.scenarios import Phase, bursts, step
from demo.series import (
    FleetName,
    FleetSecond,
    FleetState,
    PodLife,
    after_first_sync,
    make_row,
    max_alive,
    p99,
    ready_at,
    replica_seconds,
    right_size,
    seconds_to_right_size,
    seconds_to_size,
    seconds_to_size_per_rise,
    summarize,
)
from harness.hpa import HpaSpec, Tolerance
from harness.scaledobject import SCALED_OBJECT_BEHAVIOR

SPEC = HpaSpec(target_per_pod=8.0, behavior=SCALED_OBJECT_BEHAVIOR)


def life(started: float, ready: float | None, unready: float | None = None,
         exited: float | None = None) -> PodLife:  # fmt: skip
    return PodLife(f"pod-{started}", 1, started, ready, unready, exited)


def test_replica_seconds_count_each_pod_from_its_start_to_its_exit_within_the_run() -> None:
    lives = [
        life(-3.0, -2.0),  # started before the load: counted from 0
        life(10.0, 11.5, 40.0, 45.0),  # terminating pods still cost until they exit
        life(95.0, None),  # still starting at the end: counted to the end
    ]
    assert replica_seconds(lives, 100.0) == pytest.approx(100.0 + 35.0 + 5.0)


def test_max_alive_is_the_most_pods_at_once() -> None:
    lives = [life(0, 1), life(0, 1, 5, 10), life(10, 12), life(11, 13), life(200, 201)]
    assert max_alive(lives, 100.0) == 3  # the second exits at 10 as the third starts


@pytest.mark.parametrize(
    ("t_s", "expected"),
    [(0.5, 0), (1.0, 1), (4.9, 2), (5.0, 1), (30.0, 1)],
    ids=["none-yet", "first-ready", "both", "one-left-the-balancer", "later"],
)
def test_ready_counts_pods_in_the_load_balancer(t_s: float, expected: int) -> None:
    lives = [life(0, 1.0), life(0, 2.0, 5.0, 10.0)]
    assert ready_at(lives, t_s) == expected


@pytest.mark.parametrize(
    ("rate", "at_10", "at_5"),
    [(123, 14, 15), (60, 7, 8), (12, 2, 2), (8, 1, 1), (300, 20, 20)],
    ids=["step-fewer-within-tolerance", "burst", "quiet", "one-pod", "capped"],
)
def test_right_size_is_the_oracle_or_fewer_within_the_scale_up_tolerance(
    rate: int, at_10: int, at_5: int
) -> None:
    """123/s: 14 pods carry 112/s, 9.8 % short, within a 10 % tolerance, not within 5 %."""
    assert right_size(rate, 8.0, Tolerance(0.1, 0.1), 20) == at_10
    assert right_size(rate, 8.0, Tolerance(up=0.05, down=0.1), 20) == at_5


def test_seconds_to_size_from_the_phase_start_within_the_phase() -> None:
    phase = Phase("step", 10, 60, 123)
    lives = [life(-5, -4), *[life(12, 14.0 + i) for i in range(13)]]
    assert seconds_to_size(lives, phase, 14) == pytest.approx(16.0)  # the 13th new one at 26
    assert seconds_to_size(lives, phase, 1) == 0.0  # already there
    assert seconds_to_size(lives, phase, 15) is None


def test_seconds_to_right_size_is_the_slowest_rise_and_none_if_one_never_made_it() -> None:
    scenario = bursts(150, 12, seed=1)
    first, second, third = scenario.rises()
    always = [life(-10, -9) for _ in range(20)]
    assert seconds_to_right_size(always, scenario, 8.0, Tolerance(), 20) == 0.0
    late = [life(-10, -9) for _ in range(3)] + [
        life(first.start_s, first.start_s + 4.0) for _ in range(17)
    ]
    assert seconds_to_right_size(late, scenario, 8.0, Tolerance(), 20) == pytest.approx(4.0)
    assert seconds_to_size_per_rise(late, scenario, 8.0, Tolerance(), 20) == [4.0, 0.0, 0.0]
    assert seconds_to_right_size(always[:2], scenario, 8.0, Tolerance(), 20) is None
    assert second.start_s > first.end_s and third.start_s > second.end_s


def fleet_second(**fields: object) -> dict[str, object]:
    line: dict[str, object] = {"sent": 10, "ok": 8, "r429": 2, "errors": 0, "lost": 0,
                               "p99_ms": 1.5}  # fmt: skip
    line.update(fields)
    return line


def test_summary_json_has_exactly_the_documented_keys() -> None:
    scenario = step(30, 40)  # 3 s idle, 21 s at 40/s, 6 s idle
    state = FleetState(metric=40.0, desired=5, running=5, ready=5, active=True)
    lines = {"direct": fleet_second(errors=1, lost=1, sent=11),
             "prometheus": fleet_second(r429=5, sent=13),
             "floor": fleet_second(r429=1, sent=12)}  # fmt: skip
    states = {"direct": state, "prometheus": state, "floor": state}
    rows = [
        make_row(scenario, t, states, lines,  # type: ignore[arg-type]
                 target_per_pod=8.0, min_replicas=1, max_replicas=20)
        for t in range(30)
    ]  # fmt: skip
    lives: dict[FleetName, list[PodLife]] = {
        "direct": [life(-1, -0.5) for _ in range(5)],
        "prometheus": [life(-1, -0.5)],
        "floor": [life(-1, -0.5) for _ in range(6)],
    }
    summary = summarize(rows, scenario, lives, spec=SPEC, sync_s=15.0, first_sync_s=1.0)
    document = json.loads(json.dumps(summary.as_json()))
    assert set(document) == {"scenario", "target_per_pod", "offered_planned", "offered_measured",
                             "fleets"}  # fmt: skip
    assert set(document["fleets"]) == {"direct", "prometheus", "floor", "oracle"}
    for figures in document["fleets"].values():
        assert set(figures) == {"refused", "answered", "replica_seconds",
                                "seconds_to_right_size", "max_replicas", "lost"}  # fmt: skip
    assert document["scenario"] == "step" and document["target_per_pod"] == 8.0
    assert document["offered_planned"] == 21 * 40
    assert document["offered_measured"] == 30 * 11  # the fleet that got least
    direct, prometheus, oracle = (document["fleets"][n] for n in ("direct", "prometheus", "oracle"))
    assert direct == {"refused": 90, "answered": 240, "replica_seconds": 150.0,
                      "seconds_to_right_size": 0.0, "max_replicas": 5, "lost": 30}  # fmt: skip
    assert prometheus["refused"] == 150 and prometheus["seconds_to_right_size"] is None
    floor = document["fleets"]["floor"]
    assert floor == {"refused": 30, "answered": 240, "replica_seconds": 180.0,
                     "seconds_to_right_size": 0.0, "max_replicas": 6, "lost": 0}  # fmt: skip
    assert oracle == {"refused": 0, "answered": 840, "replica_seconds": 9.0 + 21 * 5,
                      "seconds_to_right_size": 0.0, "max_replicas": 5, "lost": 0}  # fmt: skip
    assert summary.ratio("prometheus", "direct", "refused") == pytest.approx(150 / 90)


def test_a_row_takes_the_states_and_the_load_generators_lines() -> None:
    scenario = step(30, 40)
    state = FleetState(metric=None, desired=3, running=4, ready=2, active=None)
    row = make_row(scenario, 5, {"direct": state, "prometheus": state, "floor": state},
                   {"direct": fleet_second(), "prometheus": fleet_second(p99_ms=None),
                    "floor": fleet_second(ok=9, r429=1)},
                   target_per_pod=8.0, min_replicas=1, max_replicas=20)  # fmt: skip
    assert (row.t_s, row.phase, row.offered_per_s, row.oracle_replicas) == (5, "step", 40, 5)
    assert row.fleets["direct"] == FleetSecond(None, 3, 4, 2, 10, 8, 2, 0, 0, 1.5)
    assert row.fleets["prometheus"].p99_ms is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), ([5.0], 5.0), ([float(i) for i in range(1, 101)], 99.0),
     ([float(i) for i in range(1, 201)], 198.0)],
    ids=["none", "one", "hundred", "two-hundred"],
)  # fmt: skip
def test_p99_is_the_nearest_rank(values: list[float], expected: float | None) -> None:
    assert p99(values) == expected


def test_after_the_first_sync_is_from_that_sync_until_the_right_size_was_ready() -> None:
    """The step at 10 s; syncs every 15 s from 2 s: the first after the step is at 17 s."""
    rises = [Phase("step", 10, 60, 123)]
    syncs = [2.0, 17.0, 32.0, 47.0]
    assert after_first_sync([8.6], rises, syncs) == pytest.approx(1.6)  # ready at 18.6 s
    assert after_first_sync([0.0], rises, syncs) == 0.0  # already the right size
    assert after_first_sync([5.0], rises, syncs) == 0.0  # ready before that sync
    assert after_first_sync([None], rises, syncs) is None
    assert after_first_sync([8.6], rises, []) is None  # no sync known
    assert after_first_sync([0.0], rises, []) == 0.0
    assert after_first_sync([8.6], rises, [17.2]) == pytest.approx(1.4)


def test_after_the_first_sync_takes_the_slowest_rise() -> None:
    rises = [Phase("burst 1", 10, 30, 80), Phase("burst 2", 52, 70, 100)]
    syncs = [float(t) for t in range(5, 150, 15)]  # 5, 20, 35, 50, 65
    assert after_first_sync([11.0, 15.0], rises, syncs) == pytest.approx(2.0)  # 21 - 20, 67 - 65
    assert after_first_sync([13.0, 3.0], rises, syncs) == pytest.approx(3.0)  # 23 - 20; before 65
    assert after_first_sync([13.0, None], rises, syncs) is None

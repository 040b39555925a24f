"""The emulated HPA against the worked examples of kubernetes.io's "Horizontal Pod
Autoscaling" page (algorithm details, scaling policies, stabilization, defaults)."""

from __future__ import annotations

import pytest

from harness.hpa import (
    DEFAULT_BEHAVIOR,
    Autoscaler,
    Behavior,
    HpaSpec,
    Policy,
    Rules,
    Select,
    Tolerance,
    metric_replicas,
)
from harness.scaledobject import SCALED_OBJECT_BEHAVIOR

NO_LIMITS = Rules(0.0, (Policy("Percent", 1000, 15.0),), "Max")
UNLIMITED = Behavior("unlimited", scale_up=NO_LIMITS, scale_down=NO_LIMITS)
# Two steps up from 3 pods (6 pods or 200 % a sync), with a period equal to the 15 s sync.
PERIOD_15 = Behavior(
    "6 pods or 200 % per 15 s",
    scale_up=Rules(0.0, (Policy("Pods", 6, 15.0), Policy("Percent", 200, 15.0)), "Max"),
    scale_down=SCALED_OBJECT_BEHAVIOR.scale_down,
)


@pytest.mark.parametrize(
    ("pods", "average_per_pod", "target", "expected"),
    [
        (2, 0.200, 0.100, 4),  # 200m against 100m: 200.0 / 100.0 == 2.0, double
        (4, 0.050, 0.100, 2),  # 50m against 100m: 0.5, halve
        (10, 0.105, 0.100, 10),  # a ratio of 1.05 is within the 0.1 tolerance: no change
        (10, 0.095, 0.100, 10),  # 0.95: within the tolerance too
        (10, 0.110, 0.100, 10),  # exactly 1.1: still within
        (10, 0.111, 0.100, 12),  # 1.11: ceil(10 * 1.11) = 12
        (3, 41.0, 8.0, 16),  # the demo's step: 123/s over 8/s per pod
        (3, 0.0, 8.0, 0),  # no load asks for nothing (minReplicas applies later)
    ],
    ids=["200m-of-100m-doubles", "50m-of-100m-halves", "1.05-tolerated", "0.95-tolerated",
         "1.1-tolerated", "1.11-scales", "demo-step", "idle"],
)  # fmt: skip
def test_metric_replicas_is_ceil_of_current_times_ratio(
    pods: int, average_per_pod: float, target: float, expected: int
) -> None:
    """For an External AverageValue target the HPA is given the total; the page's
    per-pod average times the pods is that total."""
    assert metric_replicas(pods * average_per_pod, target, pods, Tolerance(0.1, 0.1)) == expected


def run_syncs(
    behavior: Behavior, start: int, values: list[float], *, every_s: float = 15.0,
    target: float = 1.0, max_replicas: int = 100, seed_window: bool = False,
) -> list[int]:  # fmt: skip
    """Sync every `every_s` with each value in turn; the pods follow the spec at once.
    Returns the replica count after each sync."""
    spec = HpaSpec(target_per_pod=target, max_replicas=max_replicas, behavior=behavior)
    hpa = Autoscaler.seeded(spec, now_s=0.0, replicas=start) if seed_window else Autoscaler(spec)
    replicas, seen = start, []
    for index, value in enumerate(values):
        replicas = hpa.sync(
            index * every_s, value=value, spec_replicas=replicas, pods=replicas
        ).desired
        seen.append(replicas)
    return seen


def test_scale_down_policies_pods_4_and_percent_10_per_minute() -> None:
    """The page's example: at most 4 pods or 10 % a minute, whichever removes more;
    from 80 to 10 replicas, 8 go first, then 8 again (10 % of 72 is 7.2, rounded up),
    and below 40 replicas 4 at a time. The page's example has no stabilization window."""
    down = Rules(0.0, (Policy("Pods", 4, 60.0), Policy("Percent", 10, 60.0)))
    behavior = Behavior("page example", scale_up=DEFAULT_BEHAVIOR.scale_up, scale_down=down)
    seen = run_syncs(behavior, 80, [10.0] * 57)  # a sync every 15 s for 14 minutes
    assert seen[::4] == [72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10, 10]
    assert seen[1:4] == [72, 72, 72]  # nothing more within the policies' minute


@pytest.mark.parametrize(
    ("select", "expected"),
    [("Max", [90, 81, 72]), ("Min", [95, 90, 85]), ("Disabled", [100, 100, 100])],
    ids=["10-percent-a-minute", "and-at-most-5-pods-a-minute", "scale-down-disabled"],
)
def test_limit_scale_down_rate(select: Select, expected: list[int]) -> None:
    """The page's "limit scale down rate" examples: 10 % a minute; with a second policy
    of 5 pods a minute and `selectPolicy: Min`, no more than 5 pods a minute; and
    `selectPolicy: Disabled`, no scale-down at all."""
    policies = (Policy("Percent", 10, 60.0),) + (
        (Policy("Pods", 5, 60.0),) if select == "Min" else ()
    )
    down = Rules(0.0, policies, select)
    behavior = Behavior("limited", scale_up=DEFAULT_BEHAVIOR.scale_up, scale_down=down)
    assert run_syncs(behavior, 100, [1.0] * 3, every_s=60.0) == expected


@pytest.mark.parametrize(
    ("select", "expected"),
    [("Max", [5, 5, 5, 5, 10, 10, 10, 10, 20]), ("Min", [2, 2, 2, 2, 4, 4, 4, 4, 8])],
    ids=["max-of-4-pods-or-100-percent", "min-of-4-pods-or-100-percent"],
)
def test_scale_up_pods_4_and_percent_100_per_60_s(select: Select, expected: list[int]) -> None:
    """Up to 4 pods or double a minute: from 1 the Pods policy allows 5 (Max), the
    Percent policy 2 (Min); within the minute nothing more, then again from there."""
    up = Rules(0.0, (Policy("Pods", 4, 60.0), Policy("Percent", 100, 60.0)), select)
    behavior = Behavior("up", scale_up=up, scale_down=DEFAULT_BEHAVIOR.scale_down)
    assert run_syncs(behavior, 1, [50.0] * 9) == expected


@pytest.mark.parametrize(
    ("behavior", "expected"),
    [(DEFAULT_BEHAVIOR, [7, 14, 14, 14]), (PERIOD_15, [9, 16, 16, 16])],
    ids=["hpa-defaults-100-percent-or-4-pods", "200-percent-or-6-pods"],
)
def test_the_demo_step_from_3_pods_needs_16(behavior: Behavior, expected: list[int]) -> None:
    """123/s over 8/s per pod: the defaults double (or add 4) every 15 s, and stop at 14,
    where 123 / (8 x 14) = 1.098 is within the tolerance; 200 % or 6 pods a sync
    triples: 3 -> 9 -> 16, two syncs."""
    assert run_syncs(behavior, 3, [123.0] * 4, target=8.0) == expected


def test_the_scaled_objects_hpa_reaches_16_from_3_pods_in_one_sync() -> None:
    """The demo's step, 123/s over 8/s per pod, on an HPA that stands at 3 pods: the
    manifest's scale-up policy sets the whole 16 at the first sync, and 16 then holds
    (123 / 128 = 0.96, within the scale-down tolerance)."""
    assert run_syncs(SCALED_OBJECT_BEHAVIOR, 3, [123.0] * 3, target=8.0, seed_window=True) == [
        16,
        16,
        16,
    ]


@pytest.mark.parametrize("start", range(1, 21))
def test_from_any_count_one_sync_sets_what_the_metric_asks_for(start: int) -> None:
    """Whatever the count, one sync of the ScaledObject's HPA at 160/s sets 20 pods,
    and at 123/s 16 (or keeps a count the tolerance allows)."""
    spec = HpaSpec(target_per_pod=8.0, max_replicas=20, behavior=SCALED_OBJECT_BEHAVIOR)
    top = Autoscaler.seeded(spec, now_s=0.0, replicas=start)
    assert top.sync(15.0, value=160.0, spec_replicas=start, pods=start).desired == 20
    step = Autoscaler.seeded(spec, now_s=0.0, replicas=start).sync(
        15.0, value=123.0, spec_replicas=start, pods=start
    )
    assert step.desired == (start if start >= 15 else 16)  # below 15, 123/s is over 5 %


def test_scale_down_stabilization_keeps_the_highest_recommendation_of_the_window() -> None:
    """The page: with a 300 s window the HPA uses the highest recommendation of the last
    300 s, so a drop in load scales down only once it has lasted that long."""
    values = [10.0] + [2.0] * 25  # a sync every 15 s; the load drops after the first
    seen = run_syncs(DEFAULT_BEHAVIOR, 10, values)
    assert seen[:20] == [10] * 20  # t = 0 .. 285 s: the 10 of t = 0 is within 300 s
    assert seen[20:] == [2] * 6  # from t = 300 s it is not (a window is "after" its
    # start, strictly); the default policy then allows 100 % at once


def test_a_shorter_scale_down_window_scales_down_sooner() -> None:
    behavior = SCALED_OBJECT_BEHAVIOR.with_scale_down_window(30.0)
    assert behavior.scale_down.stabilization_window_s == 30.0
    assert "30 s" in behavior.name
    seen = run_syncs(behavior, 16, [123.0] + [0.0] * 12, target=8.0)
    # held until the 16 of t = 0 is 30 s old, then at most 25 % (or 1 pod, the larger
    # change) a minute: 16 -> 12 at t = 30 s, -> 9 at 90 s, -> 6 at 150 s
    assert seen == [16, 16, 12, 12, 12, 12, 9, 9, 9, 9, 6, 6, 6]


def test_a_seeded_window_holds_the_count_an_hpa_already_had() -> None:
    """An HPA first seen at 3 replicas keeps them while idle load is younger than the
    window, as the controller seeds its window with the HPA's desired count."""
    seen = run_syncs(SCALED_OBJECT_BEHAVIOR, 3, [0.0] * 3, target=8.0, seed_window=True)
    assert seen == [3, 3, 3]
    unseeded = run_syncs(SCALED_OBJECT_BEHAVIOR, 3, [0.0] * 3, target=8.0)
    assert unseeded == [2, 2, 2]  # 25 % of 3 truncates to 0; 1 pod a minute wins


@pytest.mark.parametrize(
    ("defaults", "start", "value", "expected", "reason"),
    [
        (True, 3, 1000.0, 7, "ScaleUpLimit"),
        (False, 3, 1000.0, 20, "TooManyReplicas"),
        (False, 15, 1000.0, 20, "TooManyReplicas"),
        (False, 25, 1000.0, 20, "TooManyReplicas"),
        (False, 2, 0.0, 1, "TooFewReplicas"),
        (False, 3, 24.0, 3, "DesiredWithinRange"),
    ],
    ids=["rate-limited", "one-sync-to-max", "max-replicas", "above-max-from-the-start",
         "min-replicas", "steady"],
)  # fmt: skip
def test_min_and_max_replicas_bound_the_result(
    defaults: bool, start: int, value: float, expected: int, reason: str
) -> None:
    behavior = DEFAULT_BEHAVIOR if defaults else SCALED_OBJECT_BEHAVIOR
    spec = HpaSpec(target_per_pod=8.0, min_replicas=1, max_replicas=20,
                   behavior=behavior.with_scale_down_window(0.0))  # fmt: skip
    decision = Autoscaler(spec).sync(0.0, value=value, spec_replicas=start, pods=start)
    assert (decision.desired, decision.reason) == (expected, reason)


def test_rate_limits_count_from_the_replicas_at_the_start_of_the_period() -> None:
    """Events within the period count against it: 3 -> 9 at t = 0 leaves nothing for a
    sync 10 s later (the period started at 3, 200 % of it is 9), but a sync 15 s after
    counts from 9."""
    spec = HpaSpec(target_per_pod=8.0, behavior=PERIOD_15)
    hpa = Autoscaler(spec)
    assert hpa.sync(0.0, value=400.0, spec_replicas=3, pods=3).desired == 9
    assert hpa.period_start(10.0, 9, 15.0) == 3
    assert hpa.sync(10.0, value=400.0, spec_replicas=9, pods=9).desired == 9
    assert hpa.sync(15.0, value=400.0, spec_replicas=9, pods=9).desired == 20


def test_tolerance_uses_the_pods_that_exist() -> None:
    """The ratio is taken against the pods that exist (the scale's status), which lag
    the spec while new pods start."""
    spec = HpaSpec(target_per_pod=8.0, behavior=SCALED_OBJECT_BEHAVIOR)
    decision = Autoscaler(spec).sync(0.0, value=33.0, spec_replicas=4, pods=4)
    assert decision.metric_replicas == 4  # 33 / 32 = 1.03: tolerated
    decision = Autoscaler(spec).sync(0.0, value=33.0, spec_replicas=4, pods=3)
    assert decision.metric_replicas == 5  # 33 / 24 = 1.38: ceil(33 / 8)


@pytest.mark.parametrize(
    ("tolerance", "pods", "value", "expected"),
    [
        (Tolerance(up=0.05, down=0.1), 10, 10.5, 10),  # 1.05: just within 5 % up
        (Tolerance(up=0.05, down=0.1), 10, 10.6, 11),  # 1.06: over it
        (Tolerance(up=0.05, down=0.1), 10, 9.0, 10),  # 0.9: just within 10 % down
        (Tolerance(up=0.05, down=0.1), 10, 8.9, 9),  # 0.89: under it
        (Tolerance(up=0.2, down=0.0), 10, 11.9, 10),  # 20 % up tolerated
        (Tolerance(up=0.2, down=0.0), 5, 3.9, 4),  # no tolerance down
        (Tolerance(up=0.0, down=0.25), 5, 3.9, 5),  # 0.78 within 25 % down
        (Tolerance(up=0.0, down=0.25), 5, 5.001, 6),  # none up: one thousandth over
    ],
    ids=["up-5-within", "up-5-over", "down-10-within", "down-10-under", "up-20-within",
         "down-0-scales", "down-25-within", "up-0-scales"],
)  # fmt: skip
def test_each_direction_has_its_own_tolerance(
    tolerance: Tolerance, pods: int, value: float, expected: int
) -> None:
    """Within tolerance when 1 - scaleDown.tolerance <= ratio <= 1 + scaleUp.tolerance."""
    assert metric_replicas(value, 1.0, pods, tolerance) == expected


def test_an_hpa_takes_its_tolerances_from_its_behavior() -> None:
    up = Rules(0.0, DEFAULT_BEHAVIOR.scale_up.policies, "Max", tolerance=0.05)
    down = Rules(0.0, DEFAULT_BEHAVIOR.scale_down.policies, "Max", tolerance=0.2)
    spec = HpaSpec(target_per_pod=1.0, behavior=Behavior("mine", up, down))
    assert spec.tolerance == Tolerance(up=0.05, down=0.2)
    assert Autoscaler(spec).sync(0.0, value=10.6, spec_replicas=10, pods=10).desired == 11
    assert Autoscaler(spec).sync(0.0, value=8.1, spec_replicas=10, pods=10).desired == 10
    assert HpaSpec(target_per_pod=1.0).tolerance == Tolerance(0.1, 0.1)  # the defaults


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"target_per_pod": 0.0}, "target_per_pod"), ({"target_per_pod": 8.0, "min_replicas": 0},
     "min_replicas"), ({"target_per_pod": 8.0, "min_replicas": 5, "max_replicas": 4}, "max")],
    ids=["zero-target", "zero-min", "min-over-max"],
)  # fmt: skip
def test_a_bad_spec_is_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HpaSpec(**kwargs)  # type: ignore[arg-type]


def test_a_window_beyond_an_hour_is_refused() -> None:
    with pytest.raises(ValueError, match="stabilization window"):
        DEFAULT_BEHAVIOR.with_scale_down_window(3601.0)


@pytest.mark.parametrize(
    ("next_sync_s", "expected"),
    [(14.99, 9), (15.0, 16), (15.04, 16)],
    ids=["next-sync-a-hair-early", "exact", "a-hair-late"],
)
def test_a_second_step_up_can_hang_on_milliseconds_one_step_cannot(
    next_sync_s: float, expected: int
) -> None:
    """With two steps up and a period equal to the 15 s sync, the second step comes one
    sync late when the next sync starts a hair early; the manifest's policy sets the
    whole count at the first sync, so there is no second step to delay."""
    for behavior, first_want, want in ((PERIOD_15, 9, expected), (SCALED_OBJECT_BEHAVIOR, 16, 16)):
        hpa = Autoscaler(HpaSpec(target_per_pod=8.0, max_replicas=20, behavior=behavior))
        first = hpa.sync(0.0, value=123.0, spec_replicas=3, pods=3).desired
        assert first == first_want, behavior.name
        second = hpa.sync(next_sync_s, value=123.0, spec_replicas=first, pods=first).desired
        assert second == want, behavior.name

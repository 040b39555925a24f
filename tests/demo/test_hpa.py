"""The emulated HPA against the worked examples of kubernetes.io's "Horizontal Pod
Autoscaling" page (algorithm details, scaling policies, stabilization, defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from demo.hpa import (
    DEFAULT_BEHAVIOR,
    SCALED_OBJECT_BEHAVIOR,
    Autoscaler,
    Behavior,
    HpaSpec,
    Policy,
    Rules,
    Select,
    metric_replicas,
)

NO_LIMITS = Rules(0.0, (Policy("Percent", 1000, 15.0),), "Max")
UNLIMITED = Behavior("unlimited", scale_up=NO_LIMITS, scale_down=NO_LIMITS)
# The ScaledObject's scale-up policies with a period equal to the 15 s sync.
PERIOD_15 = Behavior(
    "period 15 s",
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
    assert metric_replicas(pods * average_per_pod, target, pods, 0.1) == expected


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
    [(DEFAULT_BEHAVIOR, [7, 14, 14, 14]), (SCALED_OBJECT_BEHAVIOR, [9, 16, 16, 16])],
    ids=["hpa-defaults-100-percent-or-4-pods", "scaled-object-200-percent-or-6-pods"],
)
def test_the_demo_step_from_3_pods_needs_16(behavior: Behavior, expected: list[int]) -> None:
    """123/s over 8/s per pod: the defaults double (or add 4) every 15 s, and stop at 14,
    where 123 / (8 x 14) = 1.098 is within the tolerance; the ScaledObject's policies
    triple (or add 6): 3 -> 9 -> 16, two syncs."""
    assert run_syncs(behavior, 3, [123.0] * 4, target=8.0) == expected


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
    ("start", "value", "expected", "reason"),
    [
        (3, 1000.0, 9, "ScaleUpLimit"),
        (15, 1000.0, 20, "TooManyReplicas"),
        (25, 1000.0, 20, "TooManyReplicas"),
        (2, 0.0, 1, "TooFewReplicas"),
        (3, 24.0, 3, "DesiredWithinRange"),
    ],
    ids=["rate-limited", "max-replicas", "above-max-from-the-start", "min-replicas", "steady"],
)
def test_min_and_max_replicas_bound_the_result(
    start: int, value: float, expected: int, reason: str
) -> None:
    spec = HpaSpec(target_per_pod=8.0, min_replicas=1, max_replicas=20,
                   behavior=SCALED_OBJECT_BEHAVIOR.with_scale_down_window(0.0))  # fmt: skip
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
    decision = Autoscaler(spec).sync(0.0, value=34.0, spec_replicas=4, pods=4)
    assert decision.metric_replicas == 4  # 34 / 32 = 1.06: tolerated
    decision = Autoscaler(spec).sync(0.0, value=34.0, spec_replicas=4, pods=3)
    assert decision.metric_replicas == 5  # 34 / 24 = 1.42: ceil(34 / 8)


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


def _rules(section: dict[str, object]) -> Rules:
    policies = section["policies"]
    assert isinstance(policies, list)
    return Rules(
        float(str(section["stabilizationWindowSeconds"])),
        tuple(Policy(p["type"], int(p["value"]), float(p["periodSeconds"])) for p in policies),
        str(section["selectPolicy"]),  # type: ignore[arg-type]
    )


def test_the_demos_scaled_object_behavior_is_the_manifests() -> None:
    manifest = Path(__file__).resolve().parents[2] / "manifests/base/autoscaling/scaledobject.yaml"
    spec = yaml.safe_load(manifest.read_text())["spec"]
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert _rules(behavior["scaleUp"]) == SCALED_OBJECT_BEHAVIOR.scale_up
    assert _rules(behavior["scaleDown"]) == SCALED_OBJECT_BEHAVIOR.scale_down


@pytest.mark.parametrize(
    ("next_sync_s", "expected"),
    [(14.99, 9), (15.0, 16), (15.04, 16)],
    ids=["next-sync-a-hair-early", "exact", "a-hair-late"],
)
def test_a_scale_up_period_below_the_sync_does_not_hang_on_milliseconds(
    next_sync_s: float, expected: int
) -> None:
    """With a period equal to the 15 s sync, the real HPA's second step came one sync late
    when the next sync started a hair early; the manifest's 10 s period removes that."""
    for behavior, want in ((PERIOD_15, expected), (SCALED_OBJECT_BEHAVIOR, 16)):
        hpa = Autoscaler(HpaSpec(target_per_pod=8.0, max_replicas=20, behavior=behavior))
        first = hpa.sync(0.0, value=123.0, spec_replicas=3, pods=3).desired
        assert first == 9
        second = hpa.sync(next_sync_s, value=123.0, spec_replicas=9, pods=9).desired
        assert second == want, behavior.name

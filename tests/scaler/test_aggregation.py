from __future__ import annotations

import math

import pytest

from scaler.aggregation import aggregate
from scaler.bucket_state import BucketState
from scaler.held_state import HeldState
from scaler.scaling import desired_replicas
from scaler.series import PodSeries

FRESH_FOR_S = 3.0


def state(
    requested: float,
    uptime_s: float,
    *,
    boot_id: str = "boot-1",
    tokens: float = 50.0,
    capacity: float = 100.0,
    refill_per_s: float = 50.0,
) -> BucketState:
    return BucketState(
        pod="pod", boot_id=boot_id, uptime_s=uptime_s, capacity=capacity,
        refill_per_s=refill_per_s, tokens=tokens, granted_total=requested, denied_total=0.0,
    )  # fmt: skip


def feed(series: PodSeries, points: list[tuple[float, float]], keep_s: float = 10.0) -> None:
    """points: (uptime_s, requested_total); the scaler's clock follows the pod's."""
    for uptime_s, requested in points:
        series.observe(state(requested, uptime_s), now=uptime_s, keep_s=keep_s)


def test_rate_comes_from_counter_growth_over_pod_uptime() -> None:
    pod = PodSeries("a")
    feed(pod, [(10.0, 1000.0), (11.0, 1060.0)])
    assert pod.fast_rate() == pytest.approx(60.0)


def test_a_first_sample_gives_no_rate_however_busy_the_pod_was() -> None:
    pod = PodSeries("a")
    feed(pod, [(4000.0, 200_000.0)])  # 50/s on average since boot, but not seen by us
    assert not pod.has_rate
    assert pod.fast_rate() is None and pod.window_rate(5.0) is None
    feed(pod, [(4001.0, 200_000.0)])  # idle now
    assert pod.fast_rate() == 0.0 and pod.window_rate(5.0) == 0.0


def test_a_fresh_scaler_beside_idle_pods_reports_zero_and_inactive_from_the_first_poll() -> None:
    pods = [PodSeries(name) for name in "abc"]
    for poll in range(3):
        for index, pod in enumerate(pods):  # busy earlier: big counters, none moving now
            uptime_s = 600.0 + 10 * index + poll
            pod.observe(state(15.9 * 600, uptime_s), now=100.0 + poll, keep_s=10)
        agg = aggregate(pods, now=100.0 + poll, window_s=5.0, fresh_for_s=FRESH_FOR_S)
        assert agg.has_data
        assert (agg.demand_per_s, agg.fast_demand_per_s, agg.window_demand_per_s) == (0, 0, 0)
        assert agg.pods_rated == (0 if poll == 0 else 3)


def test_denied_tokens_count_as_demand() -> None:
    pod = PodSeries("a")
    first = BucketState("p", "b", 1.0, 100, 50, 0, granted_total=50, denied_total=0)
    second = BucketState("p", "b", 2.0, 100, 50, 0, granted_total=100, denied_total=70)
    pod.observe(first, now=1.0, keep_s=10)
    pod.observe(second, now=2.0, keep_s=10)
    assert pod.fast_rate() == pytest.approx(120.0)


def test_restart_starts_a_new_series_with_no_rate_until_seen_twice() -> None:
    pod = PodSeries("a")
    feed(pod, [(100.0, 5000.0), (101.0, 5050.0)])
    pod.observe(state(30.0, 0.5, boot_id="boot-2"), now=102.0, keep_s=10)
    assert pod.restarts == 1
    assert pod.fast_rate() is None  # 30 tokens since the new boot: not seen happening
    pod.observe(state(90.0, 1.5, boot_id="boot-2"), now=103.0, keep_s=10)
    assert pod.fast_rate() == pytest.approx(60.0)


def test_counter_going_backwards_within_a_boot_is_treated_as_a_restart() -> None:
    pod = PodSeries("a")
    feed(pod, [(10.0, 500.0), (11.0, 550.0), (12.0, 20.0)])
    assert pod.restarts == 1
    assert pod.fast_rate() is None
    feed(pod, [(13.0, 30.0)])
    assert pod.fast_rate() == pytest.approx(10.0)


def test_fast_rate_does_not_read_a_clump_in_a_short_gap_as_a_rate() -> None:
    # 60/s for a second, then 5 requests that arrived together 20 ms before the last
    # answer: over the 20 ms alone that reads 250/s; over the last 1.02 s it is the truth.
    pod = PodSeries("a")
    feed(pod, [(10.0, 1000.0), (11.0, 1060.0), (11.02, 1065.0)])
    assert pod.fast_rate() == pytest.approx(65.0 / 1.02)


def test_fast_rate_over_answers_all_closer_than_the_span_uses_the_oldest() -> None:
    pod = PodSeries("a")
    feed(pod, [(10.0, 1000.0), (10.1, 1006.0), (10.2, 1012.0)])
    assert pod.fast_rate() == pytest.approx(60.0)


def test_window_rate_averages_and_fast_rate_follows_the_last_poll() -> None:
    pod = PodSeries("a")
    # 100 tokens/s for 5 s, then nothing for 1 s
    feed(pod, [(float(t), 100.0 * t) for t in range(6)] + [(6.0, 500.0)])
    assert pod.fast_rate() == pytest.approx(0.0)
    assert pod.window_rate(5.0) == pytest.approx(400.0 / 5.0)
    assert pod.window_rate(2.0) == pytest.approx(100.0 / 2.0)


def test_samples_older_than_the_window_are_pruned_but_one_spans_it() -> None:
    pod = PodSeries("a")
    feed(pod, [(float(t), 10.0 * t) for t in range(100)], keep_s=5.0)
    assert len(pod.samples) <= 7
    assert pod.samples[-1].uptime_s - pod.samples[0].uptime_s >= 5.0


def pods_at(now: float, *series: tuple[str, list[tuple[float, float]]]) -> list[PodSeries]:
    result = []
    for name, points in series:
        pod = PodSeries(name)
        feed(pod, points)
        result.append(pod)
    return result


def test_demand_is_the_larger_of_last_poll_and_window_average() -> None:
    rising = pods_at(5.0, ("a", [(0.0, 0.0), (4.0, 0.0), (5.0, 100.0)]))
    agg = aggregate(rising, now=5.0, window_s=5.0, fresh_for_s=FRESH_FOR_S)
    assert agg.fast_demand_per_s == pytest.approx(100.0)
    assert agg.window_demand_per_s == pytest.approx(20.0)
    assert agg.demand_per_s == pytest.approx(100.0)

    falling = pods_at(5.0, ("a", [(0.0, 0.0), (4.0, 400.0), (5.0, 400.0)]))
    agg = aggregate(falling, now=5.0, window_s=5.0, fresh_for_s=FRESH_FOR_S)
    assert agg.demand_per_s == pytest.approx(80.0)


def test_sum_over_pods_with_deficit_and_targets() -> None:
    a, b = PodSeries("a"), PodSeries("b")
    a.observe(state(0, 1.0, tokens=20.0), now=1.0, keep_s=10)
    a.observe(state(30, 2.0, tokens=20.0), now=2.0, keep_s=10)
    b.observe(state(0, 1.0, tokens=90.0, refill_per_s=30.0), now=1.0, keep_s=10)
    b.observe(state(10, 2.0, tokens=90.0, refill_per_s=30.0), now=2.0, keep_s=10)
    agg = aggregate([a, b], now=2.0, window_s=5.0, fresh_for_s=FRESH_FOR_S)
    assert agg.demand_per_s == pytest.approx(40.0)
    assert agg.deficit_tokens == pytest.approx(80.0 + 10.0)
    assert agg.refill_per_s_per_pod == pytest.approx(40.0)
    assert agg.pods_fresh == 2 and not agg.extrapolated


def test_failed_pod_keeps_its_rate_while_fresh_then_total_is_extrapolated() -> None:
    a, b = PodSeries("a"), PodSeries("b")
    for pod, rate in ((a, 30.0), (b, 10.0)):
        pod.observe(state(0, 1.0), now=1.0, keep_s=10)
        pod.observe(state(rate, 2.0), now=2.0, keep_s=10)
    b.fail("timeout: no answer")
    agg = aggregate([a, b], now=4.0, window_s=1.0, fresh_for_s=FRESH_FOR_S)
    assert agg.demand_per_s == pytest.approx(40.0) and not agg.extrapolated
    assert agg.pods_failed == 1

    a.observe(state(60, 6.0), now=6.0, keep_s=10)  # a answers again, b is now stale
    agg = aggregate([a, b], now=6.0, window_s=1.0, fresh_for_s=FRESH_FOR_S)
    assert agg.extrapolated
    assert agg.pods_fresh == 1 and agg.pods_total == 2
    assert agg.demand_per_s == pytest.approx(2 * 7.5)


def test_no_fresh_pod_means_no_data() -> None:
    pod = PodSeries("a")
    pod.observe(state(0, 1.0), now=1.0, keep_s=10)
    agg = aggregate([pod], now=10.0, window_s=5.0, fresh_for_s=FRESH_FOR_S)
    assert not agg.has_data
    assert agg.demand_per_s == 0.0
    assert agg.data_age_s == pytest.approx(9.0)
    assert not aggregate([], now=1.0, window_s=5.0, fresh_for_s=FRESH_FOR_S).has_data


def test_targets_fall_back_to_the_last_values_seen_and_are_unknown_before() -> None:
    agg = aggregate([], 1.0, 5.0, FRESH_FOR_S, fallback_refill_per_s=7.0, fallback_capacity=9.0)
    assert (agg.refill_per_s_per_pod, agg.capacity_per_pod) == (7.0, 9.0)
    agg = aggregate([PodSeries("a")], 1.0, 5.0, FRESH_FOR_S)
    assert (agg.refill_per_s_per_pod, agg.capacity_per_pod) == (None, None)


def test_a_pod_seen_once_counts_at_the_others_last_second_never_at_its_past() -> None:
    old, new = PodSeries("old"), PodSeries("new")
    old.observe(state(0, 1.0), now=1.0, keep_s=10)
    old.observe(state(30, 2.0), now=2.0, keep_s=10)
    new.observe(state(99_999, 50.0), now=2.0, keep_s=10)  # its past is not demand now
    agg = aggregate([old, new], now=2.0, window_s=1.0, fresh_for_s=FRESH_FOR_S)
    assert (agg.pods_fresh, agg.pods_rated, agg.extrapolated) == (2, 1, False)
    # No rate of its own yet: the load balancer sends it what it sends the other.
    assert agg.demand_per_s == pytest.approx(60.0)
    alone = aggregate([new], now=2.0, window_s=1.0, fresh_for_s=FRESH_FOR_S)
    assert alone.demand_per_s == 0.0  # nobody rated: nothing to go by, never its past
    assert agg.deficit_tokens == pytest.approx(100.0)  # levels count from the first answer


def test_a_growing_fleet_does_not_count_the_load_that_moved_to_new_pods_twice() -> None:
    """120/s over 3 pods for 5 s, then spread over 9: the 6 new pods are seen once."""
    old = [PodSeries(f"old-{i}") for i in range(3)]
    for t in range(6):
        for pod in old:
            pod.observe(state(40.0 * t, 10.0 + t), now=float(t), keep_s=10)
    for pod in old:
        pod.observe(state(40.0 * 5 + 120.0 / 9, 16.0), now=6.0, keep_s=10)
    new = [PodSeries(f"new-{i}") for i in range(6)]
    for pod in new:
        pod.observe(state(0.0, 1.0), now=6.0, keep_s=10)
    agg = aggregate([*old, *new], now=6.0, window_s=5.0, fresh_for_s=FRESH_FOR_S)
    # The old pods' window (5 s) still holds most of the 120/s; nothing is tripled.
    assert 0.8 * 120.0 <= agg.demand_per_s <= 120.0 + 1e-9
    assert not agg.extrapolated


def test_pods_that_joined_within_the_window_count_for_the_part_they_were_watched() -> None:
    """123/s over 3 pods, then over 16 from t=3: at t=5 the new pods have two samples.

    Each old pod's 5 s window holds 3 s at 41/s and 2 s at 123/16; each new pod was
    watched for 2 s. The fleet was asked 123/s all along, and that is the total.
    """
    share = 123.0 / 16
    old = [PodSeries(f"old-{i}") for i in range(3)]
    for t in range(6):
        requested = 41.0 * min(t, 3) + share * max(0, t - 3)
        for pod in old:
            pod.observe(state(requested, 100.0 + t), now=float(t), keep_s=10)
    new = [PodSeries(f"new-{i}") for i in range(13)]
    for t in (3, 4, 5):
        for pod in new:
            pod.observe(state(share * (t - 3), t - 2.0), now=float(t), keep_s=10)
    agg = aggregate([*old, *new], now=5.0, window_s=5.0, fresh_for_s=FRESH_FOR_S)
    assert agg.fast_demand_per_s == pytest.approx(123.0)
    assert agg.window_demand_per_s == pytest.approx(123.0)
    assert agg.demand_per_s == pytest.approx(123.0)  # not 183/s: nothing counted twice
    assert desired_replicas(agg.demand_per_s, 8.0) == 16


def test_a_pod_watched_for_part_of_the_window_adds_that_part_of_its_rate() -> None:
    pod = PodSeries("a")
    feed(pod, [(50.0, 0.0), (51.0, 10.0), (52.0, 20.0)])
    assert pod.window_rate(5.0) == pytest.approx(10.0 * 2 / 5)
    assert pod.window_rate(2.0) == pytest.approx(10.0)
    assert pod.fast_rate() == pytest.approx(10.0)


def test_a_stale_pod_is_still_extrapolated_from_the_rated_ones() -> None:
    answering, stale = PodSeries("answering"), PodSeries("stale")
    for pod in (answering, stale):
        pod.observe(state(0, 1.0), now=1.0, keep_s=10)
        pod.observe(state(30, 2.0), now=2.0, keep_s=10)
    answering.observe(state(60, 3.0), now=10.0, keep_s=10)
    agg = aggregate([answering, stale], now=10.0, window_s=1.0, fresh_for_s=FRESH_FOR_S)
    assert (agg.pods_fresh, agg.pods_rated, agg.extrapolated) == (1, 1, True)
    assert agg.demand_per_s == pytest.approx(60.0)


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [
        pytest.param(0.0, 40.0, 1, id="idle-is-one"),
        pytest.param(40.0, 40.0, 1, id="exact"),
        pytest.param(40.1, 40.0, 2, id="just-over"),
        pytest.param(150.0, 40.0, 4, id="several"),
        pytest.param(120.0, 40.0, 3, id="float-noise"),
        pytest.param(math.inf, 40.0, 1, id="inf-guarded"),
        pytest.param(10.0, 0.0, 1, id="zero-target-guarded"),
    ],
)
def test_desired_replicas(value: float, target: float, expected: int) -> None:
    assert desired_replicas(value, target) == expected


def test_pods_that_never_answered_add_no_estimate() -> None:
    """1 pod at 20/s and 3 that never answered: 20/s, not 4 x 20/s."""
    answering = PodSeries("answering")
    feed(answering, [(1.0, 0.0), (2.0, 20.0)])
    silent = [PodSeries(f"silent-{i}") for i in range(3)]
    for pod in silent:
        pod.fail("connect: connection refused")
    agg = aggregate([answering, *silent], now=2.0, window_s=1.0, fresh_for_s=FRESH_FOR_S)
    assert agg.demand_per_s == pytest.approx(20.0)
    assert agg.deficit_tokens == pytest.approx(50.0)
    assert (agg.pods_total, agg.pods_fresh, agg.pods_failed) == (4, 1, 3)
    assert not agg.extrapolated


def held(count: int, oldest_s: float) -> HeldState:
    return HeldState("rating-activator-0", "boot", count, oldest_s, version=1)


def test_held_requests_are_demand_over_the_time_the_oldest_waited() -> None:
    at_zero = aggregate([], now=10.0, window_s=5.0, fresh_for_s=FRESH_FOR_S, held=[held(50, 0.5)])
    assert at_zero.has_data  # a fleet at zero whose activator answers is not unknown
    assert at_zero.held_requests == 50 and at_zero.demand_per_s == pytest.approx(50.0)
    two = [held(200, 2.0), held(10, 4.0)]  # two activators: 100/s and 2.5/s
    assert aggregate([], now=10.0, window_s=5.0, fresh_for_s=3.0, held=two).demand_per_s == (
        pytest.approx(102.5)
    )
    idle = aggregate([], now=10.0, window_s=5.0, fresh_for_s=FRESH_FOR_S, held=[held(0, 0.0)])
    assert idle.has_data and idle.demand_per_s == 0.0


def test_held_requests_add_to_the_pods_and_leave_when_forwarded() -> None:
    pod = PodSeries("10.0.0.1:9090")
    feed(pod, [(10.0, 100.0), (11.0, 130.0)])  # 30/s
    with_held = aggregate([pod], now=11.0, window_s=1.0, fresh_for_s=3.0, held=[held(8, 1.0)])
    assert with_held.demand_per_s == pytest.approx(38.0)
    forwarded = aggregate([pod], now=11.0, window_s=1.0, fresh_for_s=3.0, held=[held(0, 0.0)])
    assert forwarded.demand_per_s == pytest.approx(30.0)  # never counted twice


def test_listed_pods_that_do_not_answer_are_no_data_even_with_an_activator() -> None:
    silent = PodSeries("10.0.0.1:9090")
    silent.fail("connect refused")
    agg = aggregate([silent], now=10.0, window_s=5.0, fresh_for_s=3.0, held=[held(0, 0.0)])
    assert not agg.has_data  # UNAVAILABLE: KEDA's fallback, not a quiet zero

"""The soak checks can fail: each one, fed a recorded run that breaks its rule, says so.

A clean record passes every check; then one thing at a time is made wrong. The records
are plain data of the kind a real run collects (the checks are pure functions of it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from harness.hey import HeyResult, parse_hey
from soak.chaos import Fault
from soak.checks import Check, Evidence, check_all, true_demand
from soak.measure import Sample, Sampler, Usage
from soak.probe import Call, ScaledObject, StreamLog, plan
from soak.settings import Settings
from soak.truth import Reading, Truth
from soak.under_test import Timeline

RATE = 100.0  # what each pod is offered, and what it counts, per second
SO, WATCH, STREAM = 0, 1, 2


def clean(*, chaos: bool = False) -> Evidence:
    """A 30 s run of one pod that went well; with `chaos`, one freeze from 10 s to 16 s."""
    settings = Settings(out_dir=Path("unused"), duration_s=30.0, warmup_s=10.0, chaos=chaos)
    objects = [
        ScaledObject("team", "rating-edge", (0,), "demand", 2),
        ScaledObject("soak-watch", "watch-0", (0,), "demand", 2, "watch"),
        ScaledObject("soak-push", "push-0", (0,), "demand", 2, "stream"),
    ]
    timeline = Timeline()
    timeline.mark(0, "up", 0.0)
    faults = []
    if chaos:
        timeline.mark(0, "stopped", 10.0)
        timeline.mark(0, "up", 16.0)
        faults.append(Fault("freeze", 0, 6.0, 10.0, 16.0))
    truth = Truth()
    for second in range(30):
        truth.add(0, Reading(float(second), "boot-1", second + 1.0, int(RATE * second)))
    calls = [
        Call(so, "GetMetrics", at, at + 0.01, "OK", RATE, int(RATE))
        for at in (1.0, 2.0, 5.0, 9.0, 16.5, 20.0, 28.0)
        for so in (SO, WATCH)
    ]
    calls.append(Call(SO, "GetMetricSpec", 1.0, 1.01, "OK", 40.0, 40))
    return Evidence(
        settings=settings,
        objects=objects,
        calls=calls,
        streams=[StreamLog(STREAM, messages=[(1.0, True)])],
        timeline=timeline,
        faults=faults,
        truth=truth,
        usage=[Usage("rating-scaler", 60_000, 61_000, 61_500, 30, 31, 0)],
        hey=[HeyResult(0, 0, Counter({200: 1500, 429: 1500}))],
        scaler_gone_at=None,
        scaler_exit=0,
        scaler_rpc={("GetMetrics", "OK"): 14.0, ("GetMetrics", "UNAVAILABLE"): 0.0},
        scaler_pod_errors={},
        logs={"rating-scaler": "2026-11-28 10:00:00,000 INFO scaler: ready\n"},
        probe_end=29.0,
    )


def verdict(ev: Evidence, name: str) -> Check:
    [check] = [check for check in check_all(ev) if check.name == name]
    return check


@pytest.mark.parametrize("chaos", [False, True], ids=["soak", "chaos"])
def test_a_clean_record_passes_every_check(chaos: bool) -> None:
    checks = check_all(clean(chaos=chaos))
    assert [c for c in checks if not c.ok] == []
    assert ("recovers within two poll intervals" in {c.name for c in checks}) is chaos


def test_unavailable_while_a_pod_was_surely_fresh_fails() -> None:
    ev = clean()
    ev.calls.append(Call(SO, "GetMetrics", 20.0, 20.01, "UNAVAILABLE", detail="no fresh data"))
    check = verdict(ev, "errors only while no pod was fresh")
    assert not check.ok
    assert "rating-edge at 20.0 s: UNAVAILABLE" in check.detail


def test_unavailable_while_the_only_pod_was_frozen_passes() -> None:
    ev = clean(chaos=True)
    ev.calls.append(Call(SO, "GetMetrics", 14.0, 14.01, "UNAVAILABLE", detail="no fresh data"))
    assert verdict(ev, "errors only while no pod was fresh").ok


def test_unavailable_soon_after_a_pod_returned_passes_but_later_fails() -> None:
    # The pod came back at 16 s: fresh for sure only 3 poll intervals (+ slack) later.
    ev = clean(chaos=True)
    ev.calls.append(Call(SO, "IsActive", 17.0, 17.01, "UNAVAILABLE"))
    assert verdict(ev, "errors only while no pod was fresh").ok
    ev.calls.append(Call(SO, "IsActive", 20.0, 20.01, "UNAVAILABLE"))
    assert not verdict(ev, "errors only while no pod was fresh").ok


def test_an_answer_long_after_every_pod_went_away_fails() -> None:
    # Frozen from 10 s to 16 s: its last answer is fresh for 3 poll intervals, and the
    # cycle that judged it so is believed until the next one: until about 14 s.
    ev = clean(chaos=True)
    ev.calls.append(Call(SO, "GetMetrics", 13.5, 13.51, "OK", RATE, int(RATE)))
    ev.calls.append(Call(SO, "GetMetricSpec", 14.0, 14.01, "OK", 40.0, 40))
    assert verdict(ev, "UNAVAILABLE once no pod is fresh").ok
    ev.calls.append(Call(SO, "IsActive", 14.8, 14.81, "OK", 1.0))
    assert not verdict(ev, "UNAVAILABLE once no pod is fresh").ok


def test_any_other_error_code_fails_even_without_fresh_pods() -> None:
    ev = clean(chaos=True)
    ev.calls.append(Call(SO, "GetMetrics", 14.0, 14.01, "INTERNAL", detail="boom"))
    assert not verdict(ev, "errors only while no pod was fresh").ok


def test_demand_above_twice_the_true_demand_fails() -> None:
    ev = clean()
    assert true_demand(ev, (0,), 20.0) == pytest.approx(RATE)
    ev.calls.append(Call(SO, "GetMetrics", 20.0, 20.01, "OK", 1.9 * RATE, 190))
    assert verdict(ev, "demand never above twice the true demand").ok
    ev.calls.append(Call(SO, "GetMetrics", 21.0, 21.01, "OK", 2.1 * RATE, 210))
    check = verdict(ev, "demand never above twice the true demand")
    assert not check.ok
    assert "210.0 > 2 x 100.0" in check.detail


def test_a_pod_away_counts_what_was_offered_to_it() -> None:
    ev = clean(chaos=True)  # frozen from 10 s to 16 s: it counted nothing meanwhile
    assert true_demand(ev, (0,), 14.0) == ev.settings.offered_per_pod


def test_negative_or_non_finite_values_fail() -> None:
    for bad in (Call(SO, "GetMetrics", 3.0, 3.01, "OK", -1.0, -1),
                Call(SO, "GetMetrics", 3.0, 3.01, "OK", float("nan"), 0),
                Call(SO, "GetMetricSpec", 3.0, 3.01, "OK", 40.0, 0)):  # fmt: skip
        ev = clean()
        ev.calls.append(bad)
        assert not verdict(ev, "never a negative value").ok, bad


def test_deficit_above_the_pods_capacity_fails() -> None:
    ev = clean()
    ev.objects[SO] = replace(ev.objects[SO], metric="deficit")
    ev.calls.append(Call(SO, "GetMetrics", 3.0, 3.01, "OK", 101.0, 101))
    assert not verdict(ev, "deficit within capacity").ok


def test_slow_or_missing_recovery_fails() -> None:
    ev = clean(chaos=True)
    ev.calls = [c for c in ev.calls if not (c.so == WATCH and c.started >= 16.0)]
    ev.calls.append(Call(WATCH, "GetMetrics", 16.1, 16.11, "UNAVAILABLE"))
    assert "never" in verdict(ev, "recovers within two poll intervals").detail
    ev.calls.append(Call(WATCH, "GetMetrics", 18.9, 18.91, "OK", RATE, int(RATE)))
    check = verdict(ev, "recovers within two poll intervals")
    assert not check.ok
    assert "freeze pod 0 at 10.0 s: 2.91 s" in check.detail


def test_a_zero_answer_is_no_recovery() -> None:
    ev = clean(chaos=True)
    ev.calls = [c for c in ev.calls if not (c.so == WATCH and c.started >= 16.0)]
    ev.calls.append(Call(WATCH, "GetMetrics", 16.1, 16.11, "OK", 0.0, 0))
    assert not verdict(ev, "recovers within two poll intervals").ok


def test_5xx_fails() -> None:
    ev = clean()
    ev.hey[0].statuses[503] = 1
    assert not verdict(ev, "no 5xx from the pods").ok


def test_client_errors_fail_only_when_no_pod_was_hurt() -> None:
    ev = clean()
    ev.hey[0].errors["connection refused"] = 3
    assert not verdict(ev, "load ran and was answered").ok
    ev.settings = replace(ev.settings, chaos=True)
    assert verdict(ev, "load ran and was answered").ok


def test_memory_or_fd_growth_fails() -> None:
    ev = clean()
    ev.usage = [Usage("rating-api-0", 40_000, 48_000, 48_000, 30, 30, 0)]
    assert not verdict(ev, "resident memory flat after warm-up").ok
    ev.usage = [Usage("rating-api-0", 40_000, 40_000, 40_000, 30, 40, 0)]
    assert not verdict(ev, "open file descriptors flat").ok
    ev.usage = [Usage("rating-api-0", 40_000, 80_000, 80_000, 30, 90, 1)]  # a new process
    assert verdict(ev, "open file descriptors flat").detail.startswith("0 processes")


def test_a_scaler_that_died_or_exited_badly_fails() -> None:
    ev = clean()
    ev.scaler_gone_at = 12.5
    assert "at 12.5 s" in verdict(ev, "scaler never died").detail
    ev.scaler_gone_at, ev.scaler_exit = None, -9
    assert not verdict(ev, "scaler never died").ok


def test_streams_that_repeat_or_end_fail() -> None:
    ev = clean()
    ev.streams[0].messages.append((5.0, True))
    assert "same state twice" in verdict(ev, "streams stay open and send changes only").detail
    ev = clean()
    ev.streams[0].ends.append((6.0, "UNAVAILABLE", "scaler is shutting down"))
    assert not verdict(ev, "streams stay open and send changes only").ok


def test_errors_counted_by_the_scaler_or_logged_fail() -> None:
    ev = clean()
    ev.scaler_rpc[("IsActive", "UNAVAILABLE")] = 2.0
    assert not verdict(ev, "scaler counted no failed RPC").ok
    ev = clean()
    ev.logs["rating-scaler"] += "2026-11-28 10:00:01,000 ERROR scaler.poller: poll cycle failed\n"
    assert not verdict(ev, "no error logged").ok


def test_timeline_knows_when_a_pod_served_throughout() -> None:
    timeline = Timeline()
    timeline.mark(0, "up", 1.0)
    timeline.mark(0, "stopped", 5.0)
    timeline.mark(0, "up", 6.0)
    assert timeline.state_at(0, 0.5) == "down"
    assert timeline.up_throughout(0, 1.0, 4.9)
    assert not timeline.up_throughout(0, 4.0, 7.0)
    assert timeline.up_throughout(0, 6.0, 100.0)
    assert not timeline.up_throughout(1, 0.0, 1.0)


def test_received_rate_never_spans_two_boots() -> None:
    truth = Truth()
    for second in range(10):
        truth.add(0, Reading(float(second), "a", second + 1.0, 50 * second))
    for second in range(10, 20):
        truth.add(0, Reading(float(second), "b", second - 9.0, 80 * (second - 10)))
    assert truth.received_rate(0, 2.0, 8.0) == pytest.approx(50.0)
    assert truth.received_rate(0, 8.0, 19.0) == pytest.approx(80.0)
    assert truth.received_rate(0, 8.0, 11.0) is None  # too little of the newest boot
    assert truth.received_total(0) == 50 * 9 + 80 * 9
    assert truth.boots(0) == 2


def test_plan_has_fifty_objects_over_shared_and_distinct_targets() -> None:
    objects = plan(50, pods=3, streams=4)
    keda = [so for so in objects if so.role == "keda"]
    assert len(keda) == 50
    assert len({(so.namespace, so.name) for so in objects}) == len(objects)
    targets = Counter(so.pods for so in keda)
    assert targets[(0, 1, 2)] >= 20  # many ScaledObjects share one target
    assert {(0,), (1,), (2,), (0, 1), (1, 2)} <= targets.keys()
    assert {so.metric for so in keda} == {"demand", "deficit"}
    assert sorted(so.pods for so in objects if so.role == "watch") == [(0,), (1,), (2,)]


HEY_OUTPUT = """
Summary:
  Total:\t3.0097 secs
  Requests/sec:\t99.6782

Status code distribution:
  [200]\t244 responses
  [429]\t56 responses
  [503]\t2 responses

Error distribution:
  [10]\tPost "http://127.0.0.1:18080/v1/rate": dial tcp 127.0.0.1:18080: connect: connection refused
  [3]\tPost "http://127.0.0.1:18080/v1/rate": EOF
"""


def test_parse_hey_reads_status_codes_and_errors() -> None:
    result = parse_hey(1, HEY_OUTPUT, 0)
    assert result.statuses == {200: 244, 429: 56, 503: 2}
    assert result.server_errors == 2
    assert result.answered == 302
    assert result.errors == {"connection refused": 10, "eof": 3}


def test_usage_compares_medians_and_under_chaos_settled_fds() -> None:
    sampler = Sampler()
    fds = [30, 24, 31, 25, 32, 24, 30, 29, 30]  # pods coming and going
    for second, count in enumerate(fds):
        sampler.samples.append(Sample(float(second), "rating-scaler", 7, 1000 + second, count))
    [usage] = sampler.usage(warmup_s=2.0)
    assert (usage.rss_start_kib, usage.rss_end_kib, usage.rss_max_kib) == (1003, 1007, 1008)
    assert (usage.fds_start, usage.fds_end) == (31, 30)  # medians of 31 25 32 and 30 29 30
    sampler.settled["before"] = [Sample(0.5, "rating-scaler", 7, 1000, n) for n in (29, 29, 30)]
    sampler.settled["after"] = [Sample(8.5, "rating-scaler", 7, 1008, n) for n in (30, 29, 29)]
    [usage] = sampler.usage(warmup_s=2.0, fds_between=("before", "after"))
    assert (usage.fds_start, usage.fds_end, usage.restarts) == (29, 29, 0)

"""The poller with its lookup and fetch injected, and a fake clock: no sleeps, no sockets."""

from __future__ import annotations

import asyncio
import logging

import pytest

from scaler.bucket_state import BucketState
from scaler.discovery.contract import Unwatched
from scaler.pod_errors import PodError
from scaler.policy import HostPolicy
from scaler.poller import SeriesStore, TargetPoller, until_next_tick
from scaler.series import PodSeries
from scaler.target_key import TargetKey
from scaler.trigger import parse_trigger

TARGET = TargetKey(None, (("127.0.0.1", 1),), 9090)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Pods(Unwatched):
    def __init__(self, count: int) -> None:
        self.addresses_now = [("127.0.0.1", 9000 + i) for i in range(count)]

    async def addresses(self) -> list[tuple[str, int]]:
        return list(self.addresses_now)


def state(port: int, uptime_s: float, requested: float) -> BucketState:
    return BucketState(f"pod-{port}", "boot", uptime_s, 100.0, 50.0, 50.0, requested, 0.0)


async def test_a_slow_cycle_stops_at_its_deadline() -> None:
    clock, fetched = Clock(), []

    async def slow_fetch(host: str, port: int) -> BucketState:
        fetched.append(port)
        clock.now += 0.3  # each answer takes 0.3 s of the 1 s interval
        return state(port, 10.0, 100.0)

    poller = TargetPoller(
        TARGET, Pods(10), slow_fetch, poll_interval_s=1.0, clock=clock, max_in_flight=1
    )
    await poller.poll_once()
    assert len(fetched) == 4  # 0.0, 0.3, 0.6, 0.9 are within the interval; the rest wait
    errors = [series.last_error for series in poller.pods.values() if series.last_error]
    assert len(errors) == 6
    assert all("cycle ran out of time" in error for error in errors)


async def test_rates_follow_pod_uptime_and_pods_that_leave_are_dropped() -> None:
    clock, pods = Clock(), Pods(2)
    uptime = {"s": 10.0}

    async def fetch(host: str, port: int) -> BucketState:
        return state(port, uptime["s"], uptime["s"] * (10.0 if port == 9000 else 30.0))

    poller = TargetPoller(TARGET, pods, fetch, poll_interval_s=1.0, clock=clock)
    for _ in range(3):
        await poller.poll_once()
        uptime["s"] += 1.0
        clock.now += 1.0
    assert poller.aggregate(5.0).demand_per_s == pytest.approx(40.0)
    pods.addresses_now = pods.addresses_now[:1]
    await poller.poll_once()
    assert list(poller.pods) == ["127.0.0.1:9000"]
    assert poller.aggregate(5.0).demand_per_s == pytest.approx(10.0)


async def test_failures_and_recoveries_are_logged_once_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, broken = Clock(), {"yes": True}

    async def fetch(host: str, port: int) -> BucketState:
        if broken["yes"]:
            raise PodError("connect", "refused")
        return state(port, 10.0, 10.0)

    poller = TargetPoller(TARGET, Pods(3), fetch, poll_interval_s=1.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="scaler.poller"):
        for _ in range(3):
            await poller.poll_once()
        broken["yes"] = False
        for _ in range(2):
            await poller.poll_once()
    lines = [record.getMessage() for record in caplog.records]
    assert sum("3 pod(s) failing" in line for line in lines) == 1
    assert sum("3 pod(s) answering again" in line for line in lines) == 1
    assert len(lines) == 2


async def test_snapshot_reads_the_pollers_own_clock() -> None:
    clock, broken = Clock(), {"yes": False}

    async def fetch(host: str, port: int) -> BucketState:
        if broken["yes"]:
            raise PodError("timeout", "no answer")
        return state(port, 10.0, 10.0)

    poller = TargetPoller(TARGET, Pods(2), fetch, poll_interval_s=1.0, clock=clock)
    poller.view.touch(2.0)
    await poller.poll_once()
    clock.now += 2.0
    snap = poller.view.snapshot()
    assert (snap.taken_at, snap.window_s, snap.data_age_s) == (102.0, 2.0, 2.0)
    assert [(pod.age_s, pod.fresh) for pod in snap.pods] == [(2.0, True), (2.0, True)]
    assert snap.problem is None
    broken["yes"] = True
    clock.now += 1.5  # past 3 intervals: stale, and the snapshot says why
    await poller.poll_once()
    snap = poller.view.snapshot()
    assert not any(pod.fresh for pod in snap.pods)
    assert snap.problem is not None and "no fresh data from 2 pod(s)" in snap.problem
    assert [pod.age_s for pod in snap.pods] == [3.5, 3.5]


async def test_poll_new_gives_new_pods_their_first_answer_between_cycles() -> None:
    clock, pods, asked = Clock(), Pods(2), []

    async def fetch(host: str, port: int) -> BucketState:
        asked.append(port)
        return state(port, clock.now, 10.0 * clock.now)

    poller = TargetPoller(TARGET, pods, fetch, poll_interval_s=1.0, clock=clock)
    await poller.poll_once()
    assert sorted(asked) == [9000, 9001]
    pods.addresses_now = [("127.0.0.1", 9001), ("127.0.0.1", 9002)]  # one left, one came
    clock.now += 0.3
    asked.clear()
    await poller.poll_new()
    assert asked == [9002]  # only the newcomer, and the one that left is gone from the totals
    assert sorted(poller.pods) == ["127.0.0.1:9001", "127.0.0.1:9002"]
    assert poller.cycles == 1 and poller.aggregate(5.0).pods_total == 2
    clock.now += 0.7
    await poller.poll_once()
    assert all(series.has_rate for series in poller.pods.values())  # one cycle later: rates
    assert poller.aggregate(5.0).demand_per_s == pytest.approx(20.0)


async def test_a_woken_poller_polls_the_new_pod_before_its_next_cycle() -> None:
    pods, asked = Pods(1), []

    async def fetch(host: str, port: int) -> BucketState:
        asked.append(port)
        return state(port, 10.0, 10.0)

    poller = TargetPoller(TARGET, pods, fetch, poll_interval_s=3600.0)  # one cycle an hour
    poller.start()
    try:
        await poller.view.wait_first_cycle(5.0)
        pods.addresses_now.append(("127.0.0.1", 9001))
        poller.wake()
        for _ in range(100):
            if 9001 in asked:
                break
            await asyncio.sleep(0.01)
        assert asked == [9000, 9001] and poller.cycles == 1
    finally:
        await poller.stop()


@pytest.mark.parametrize("known", [True, False], ids=["pod-known-elsewhere", "pod-new"])
async def test_a_new_target_takes_the_samples_another_target_has_of_its_pods(
    known: bool,
) -> None:
    clock, uptime = Clock(), {"s": 10.0}

    async def fetch(host: str, port: int) -> BucketState:
        return state(port, uptime["s"], uptime["s"] * 20.0)  # every pod asks 20/s

    store = SeriesStore()
    before = TargetPoller(TARGET, Pods(1), fetch, poll_interval_s=1.0, clock=clock, store=store)
    for _ in range(3):
        await before.poll_once()
        uptime["s"] += 1.0
        clock.now += 1.0
    assert before.aggregate(5.0).demand_per_s == pytest.approx(20.0)

    # The same ScaledObject with one more pod in its `endpoints`: a new target.
    after = TargetPoller(
        TargetKey(None, (("127.0.0.1", 9000), ("127.0.0.1", 9001)), 9090),
        Pods(2),
        fetch,
        poll_interval_s=1.0,
        clock=clock,
        store=store if known else SeriesStore(),  # one store: each reads what the other took
    )
    await after.poll_once()
    # The pod polled before has its rate at once, and the new one, with none of its own
    # yet, counts at that pod's last second; without that history, a first sample of
    # each gives no rate at all.
    assert after.aggregate(5.0).demand_per_s == pytest.approx(40.0 if known else 0.0)
    assert after.pods["127.0.0.1:9000"] is not before.pods["127.0.0.1:9000"]
    samples_after = len(after.pods["127.0.0.1:9000"].samples)
    uptime["s"] += 1.0
    await before.poll_once()
    assert len(after.pods["127.0.0.1:9000"].samples) == samples_after  # a copy, not shared


@pytest.mark.parametrize(
    ("started", "now", "wait"),
    [
        pytest.param(100.0, 100.2, 0.8, id="on-the-grid"),
        pytest.param(100.002, 100.3, 0.7, id="a-few-ms-late"),
        pytest.param(100.6, 100.7, 1.3, id="first-cycle-late-in-a-second"),
        pytest.param(100.4, 100.45, 0.55, id="first-cycle-early-in-a-second"),
        pytest.param(100.0, 100.9, 0.1, id="a-slow-cycle-keeps-the-grid"),
        pytest.param(100.0, 102.3, 0.7, id="a-cycle-past-ticks-skips-them"),
    ],
)
def test_polls_land_on_the_wall_clock_grid(started: float, now: float, wait: float) -> None:
    """Replicas started apart poll in the same instants: multiples of the interval."""
    assert until_next_tick(started, now, 1.0) == pytest.approx(wait)
    assert (now + until_next_tick(started, now, 1.0)) % 1.0 == pytest.approx(0.0, abs=1e-9)


async def test_pods_a_short_cycle_could_not_reach_go_first_in_the_next() -> None:
    clock, fetched = Clock(), []

    async def slow_fetch(host: str, port: int) -> BucketState:
        fetched.append(port)
        clock.now += 0.3  # 4 pods fit in each 1 s cycle
        return state(port, clock.now, 10.0)

    poller = TargetPoller(
        TARGET, Pods(10), slow_fetch, poll_interval_s=1.0, clock=clock, max_in_flight=1
    )
    for _ in range(3):
        await poller.poll_once()
    assert len(fetched) == 12
    assert sorted(set(fetched)) == list(range(9000, 9010))  # none left out every time
    assert set(fetched[4:8]).isdisjoint(fetched[:4])


async def test_each_triggers_answer_is_computed_once_a_cycle() -> None:
    clock, uptime = Clock(), {"s": 10.0}

    async def fetch(host: str, port: int) -> BucketState:
        return state(port, uptime["s"], uptime["s"] * 20.0)

    poller = TargetPoller(TARGET, Pods(1), fetch, poll_interval_s=1.0, clock=clock)
    trigger = parse_trigger({"endpoints": "127.0.0.1:9000"}, HostPolicy(("*",)))
    await poller.poll_once()
    first = poller.view.answer(trigger)
    assert poller.view.answer(trigger) is first and not first.active  # seen once: no rate yet
    uptime["s"] += 1.0
    clock.now += 1.0
    await poller.poll_once()
    second = poller.view.answer(trigger)
    assert second is not first and second.metric_value == pytest.approx(20.0)
    assert poller.view.answer(trigger) is second


# SeriesStore: each poller's table, and a pod new to one table seeded from the others.

STORED = "10.0.0.1:9090"


def answered_at(at: float, requested: float) -> PodSeries:
    series = PodSeries(STORED)
    state = BucketState("pod", "boot", 10.0, 100.0, 50.0, 50.0, requested, 0.0)
    series.observe(state, now=at, keep_s=5.0)
    return series


def test_a_pod_nobody_polled_starts_empty() -> None:
    store = SeriesStore()
    store.open()[STORED] = PodSeries(STORED)  # listed, never answered: nothing to copy
    series = store.new_series(STORED)
    assert (series.address, series.state, list(series.samples)) == (STORED, None, [])


def test_a_new_table_starts_from_a_copy_of_the_freshest_series() -> None:
    store = SeriesStore()
    older, newer = store.open(), store.open()
    older[STORED], newer[STORED] = answered_at(1.0, 100.0), answered_at(2.0, 200.0)
    series = store.new_series(STORED)
    assert series.state is not None and series.state.requested_total == 200.0
    assert series is not newer[STORED] and series.samples is not newer[STORED].samples


def test_a_closed_table_is_read_no_more() -> None:
    store = SeriesStore()
    table = store.open()
    table[STORED] = answered_at(1.0, 100.0)
    store.close(table)
    assert store.new_series(STORED).state is None
    assert table[STORED].state is not None  # closing leaves the table itself alone


class JoiningFleet:
    """3 pods up for an hour carry `load_per_s`; at `join_at`, 13 more boot, each ready
    `start_s` later; the load is spread evenly over the ready pods (as kube-proxy does)."""

    def __init__(self, clock: Clock, load_per_s: float, join_at: float, start_s: float) -> None:
        self.clock, self.load_per_s = clock, load_per_s
        self.join_at, self.start_s = join_at, start_s

    def ready(self, port: int, at: float) -> bool:
        return port < 9003 or at >= self.join_at + self.start_s

    def requested(self, port: int, at: float) -> float:
        """What pod `port` was asked for by `at`: the load integrated in 0.05 s steps."""
        total, t, step = 0.0, 90.0, 0.05
        while t < at:
            if self.ready(port, t):
                total += self.load_per_s / sum(self.ready(p, t) for p in range(9000, 9016)) * step
            t += step
        return total

    def state(self, port: int) -> BucketState:
        now = self.clock.now
        booted = -3500.0 if port < 9003 else self.join_at
        return BucketState(
            f"pod-{port}", "boot", now - booted, 100.0, 50.0, 50.0, self.requested(port, now), 0.0
        )


class ReadyPods(Unwatched):
    """The ready pods, as a Service's EndpointSlices list them."""

    def __init__(self, fleet: JoiningFleet) -> None:
        self.fleet = fleet

    async def addresses(self) -> list[tuple[str, int]]:
        now = self.fleet.clock.now
        return [("127.0.0.1", p) for p in range(9000, 9016) if self.fleet.ready(p, now)]


@pytest.mark.parametrize(
    ("start_s", "seen_after_s"),
    [
        pytest.param(3.0, 0.0, id="listed-once-ready"),  # endpointSlices: a watch
        pytest.param(3.0, 2.5, id="listed-2.5s-after-ready"),  # `endpoints`: KEDA's next call
        pytest.param(3.0, 5.0, id="listed-5s-after-ready"),
        pytest.param(1.0, 0.0, id="quick-start"),
    ],
)
async def test_the_value_stays_within_10_percent_of_the_load_while_pods_join(
    start_s: float, seen_after_s: float
) -> None:
    """From the moment the scaler is told of the new pods: a young pod's requests since
    boot count at once (over the window), so the value does not dip while the load
    moves to pods that have answered only once. Pods nobody has listed yet cannot
    count; the ScaledObject that lists them is a new target, as in the demo."""
    clock, store = Clock(), SeriesStore()
    fleet = JoiningFleet(clock, 123.0, join_at=110.5, start_s=start_s)
    listed_at = fleet.join_at + start_s + seen_after_s

    async def fetch(host: str, port: int) -> BucketState:
        return fleet.state(port)

    before = TargetPoller(TARGET, Pods(3), fetch, poll_interval_s=1.0, clock=clock, store=store)
    after = TargetPoller(
        TargetKey(None, (("127.0.0.1", 9000),), 9091),  # another key: all 16 pods
        ReadyPods(fleet), fetch, poll_interval_s=1.0, clock=clock, store=store,
    )  # fmt: skip
    for poller in (before, after):
        poller.view.touch(5.0)
    values = []
    while clock.now < listed_at + 15.0:
        if clock.now < listed_at:
            await before.poll_once()
        else:
            await after.poll_once()
            values.append((clock.now, after.view.aggregate(5.0).demand_per_s))
        clock.now += 1.0
    off = [(t, round(v, 1)) for t, v in values if abs(v - 123.0) > 0.1 * 123.0]
    assert len(values) == 15 and off == [], off

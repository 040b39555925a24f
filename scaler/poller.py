"""The background poller of one target: every interval, all its pods in parallel.

The writer side of the scaler. RPCs never wait on pods, nor call the poller: they
read the target's `TargetView`, into which the poller publishes a `Reading` after
each cycle (the aggregates over the windows the view's readers asked for, each pod's
last answer, the failures). The poller takes its pod lookup and its fetch function as
arguments, so tests can drive it; it writes each answer into its table of the
`SeriesStore`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from scaler.aggregation import Aggregate, aggregate
from scaler.bucket_state import BucketState
from scaler.discovery import Discovery, DiscoveryError
from scaler.held_state import HeldState
from scaler.pod_errors import PodError, PodErrorReason
from scaler.readmodel import ActivatorReading, PodReading, Reading, TargetView
from scaler.series import PodSeries
from scaler.target_key import TargetKey, join_host_port

log = logging.getLogger("scaler.poller")

Clock = Callable[[], float]
Fetch = Callable[[str, int], Awaitable[BucketState]]
"""GET one pod's `/v1/bucket` at (host, port); raises PodError when there is no usable answer."""
FetchHeld = Callable[..., Awaitable[HeldState]]
"""GET an activator's `/v1/held` at (host, port), with `version=` and `wait_s=` a long
poll; raises PodError when there is no usable answer."""
LONG_POLL_S = 20.0  # an activator answers a watch at once on a change, or after this
CycleObserver = Callable[[TargetKey, float], None]
"""Told each finished cycle's target and duration (`/metrics`' poll histogram)."""
MAX_IN_FLIGHT = 4  # per target: an RPC waits behind at most this many answers per loop turn
MAX_IN_FLIGHT_TOTAL = 64  # per process, shared by every target (--max-in-flight)
MIN_KEEP_S = 5.0  # history kept per pod before anyone asked for a longer window
PodTable = dict[str, PodSeries]


@dataclass(slots=True)
class ActivatorSeries:
    """What one activator said last."""

    state: HeldState | None = None
    last_ok_at: float = -math.inf
    error: str | None = None


class SeriesStore:
    """The pod series of every target: what the pollers write and aggregate.

    Each poller opens one table (pod address -> `PodSeries`) and is the only writer of
    it. A pod new to a table starts from the freshest series any other table keeps of
    the same pod: a ScaledObject whose `endpoints` list changes names a new target, and
    its pods that were polled before keep their rate instead of starting from nothing.
    The copy is independent, so two targets never write the same series.
    """

    def __init__(self) -> None:
        self._tables: list[PodTable] = []

    def open(self) -> PodTable:
        """A new, empty table for one poller; it stays readable until `close`."""
        table: PodTable = {}
        self._tables.append(table)
        return table

    def close(self, table: PodTable) -> None:
        self._tables = [open_table for open_table in self._tables if open_table is not table]

    def new_series(self, address: str) -> PodSeries:
        """The series a table starts for a pod it has not seen: a copy of the freshest
        series another table keeps of that pod, or an empty one."""
        found = (table.get(address) for table in self._tables)
        known = [s for s in found if s is not None and s.state is not None]
        freshest = max(known, key=lambda s: s.last_ok_at, default=None)
        return PodSeries(address) if freshest is None else freshest.copy()


def until_next_tick(started_s: float, now_s: float, interval_s: float) -> float:
    """Seconds from `now_s` to the next poll, both on the wall clock, for a cycle that
    began at `started_s`: the first multiple of the interval since the epoch at least
    half an interval after that start, or the next one after now if the cycle ran past.

    So every scaler replica polls a target's pods in the same instant, and whichever
    replica KEDA's round robin asks reads the same samples; a new target's second poll
    comes 0.5 to 1.5 intervals after its first, and then once an interval.
    """
    tick = (math.floor((started_s + interval_s / 2) / interval_s) + 1) * interval_s
    if tick <= now_s:  # skip the ticks missed rather than burst
        tick = (math.floor(now_s / interval_s) + 1) * interval_s
    return tick - now_s


class TargetPoller:
    def __init__(
        self,
        target: TargetKey,
        discovery: Discovery,
        fetch: Fetch,
        *,
        poll_interval_s: float,
        clock: Clock = time.monotonic,
        on_cycle: CycleObserver | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        shared_in_flight: asyncio.Semaphore | None = None,
        store: SeriesStore | None = None,
        view: TargetView | None = None,
        activators: Discovery | None = None,
        fetch_held: FetchHeld | None = None,
    ) -> None:
        self.target = target
        self.poll_interval_s = poll_interval_s
        if view is None:
            view = TargetView(target, poll_interval_s=poll_interval_s, clock=clock)
        self.view = view  # what readers see; this poller alone publishes into it
        view.computes_with(self.aggregate)
        self._store = store if store is not None else SeriesStore()
        self.pods = self._store.open()  # address -> PodSeries; this poller alone writes it
        self.discovery_error: str | None = None
        self.cycles = 0
        self.pod_errors: Counter[PodErrorReason] = Counter()  # failed polls of single pods
        self.last_cycle_at = -1.0
        self._discovery = discovery
        self._fetch = fetch
        self._clock = clock
        self._on_cycle = on_cycle
        self._addresses: list[tuple[str, int, str]] = []
        self._in_flight = asyncio.Semaphore(max_in_flight)
        # The process-wide cap: every poller of the process holds the same semaphore. Its
        # waiters queue in order, and a target queues at most `max_in_flight` of them at
        # a time, so a target with many pods cannot starve one with few.
        if shared_in_flight is None:
            shared_in_flight = asyncio.Semaphore(MAX_IN_FLIGHT_TOTAL)
        self._shared_in_flight = shared_in_flight
        self._last_refill_per_s: float | None = None  # from the last cycle any pod answered
        self._last_capacity: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The activators in front of the pods, when the trigger names them: polled each
        # cycle, and each watched with a long poll so that a first held request shows
        # at once rather than at the next cycle.
        self._activator_discovery = activators
        self._fetch_held = fetch_held
        self.activators: dict[str, ActivatorSeries] = {}
        self._activator_addresses: list[tuple[str, int, str]] = []
        self._watches: dict[str, asyncio.Task[None]] = {}

    @property
    def fresh_for_s(self) -> float:
        return self.view.fresh_for_s

    def start(self) -> None:
        self._discovery.start(self.wake)
        if self._activator_discovery is not None:
            self._activator_discovery.start(self.wake)
        self._task = asyncio.create_task(self._run(), name=f"poll {self.target.label}")

    async def stop(self) -> None:
        tasks = [*self._watches.values(), *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._store.close(self.pods)
        await self._discovery.close()
        if self._activator_discovery is not None:
            await self._activator_discovery.close()

    def wake(self) -> None:
        """Discovery saw the pods change: poll the new ones now, not at the next cycle."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            started = time.time()
            await self._guarded(self.poll_once)
            wait_s = until_next_tick(started, time.time(), self.poll_interval_s)
            next_at = self._clock() + wait_s
            while await self._woken_before(next_at):
                self._wake.clear()
                await self._guarded(self.poll_new)

    async def _woken_before(self, deadline: float) -> bool:
        try:
            async with asyncio.timeout(max(0.0, deadline - self._clock())):
                await self._wake.wait()
        except TimeoutError:
            return False
        return True

    async def _guarded(self, poll: Callable[[], Awaitable[None]]) -> None:
        try:
            await poll()
        except Exception:
            log.exception("target %s: poll cycle failed", self.target.label)

    async def poll_once(self) -> None:
        """One cycle: discover, then every pod in parallel; readers see the result at once."""
        started = self._clock()
        await self._discover()
        await self._discover_activators()
        # The pods that answered longest ago go first: when the cycle runs out of time,
        # the pods it could not reach are the first of the next one, never the same ones.
        by_last_answer = sorted(self._addresses, key=lambda entry: self.pods[entry[2]].last_ok_at)
        await asyncio.gather(
            self._poll_all(by_last_answer, started + self.poll_interval_s),
            self._poll_activators(),
        )
        now = self._clock()
        self._finish_cycle(now, now - started)

    async def poll_new(self) -> None:
        """Between cycles: discover, and poll only pods that have never answered.

        A new pod's first answer gives no rate, so taking it now gives the pod a rate at
        the next cycle. Pods that left are dropped from the totals at once.
        """
        await self._discover()
        await self._discover_activators()
        new = [entry for entry in self._addresses if self.pods[entry[2]].state is None]
        await self._poll_all(new, self._clock() + self.poll_interval_s)
        self._publish(cycle_done=False)

    async def _poll_all(self, addresses: list[tuple[str, int, str]], deadline: float) -> None:
        polls = (self._poll(host, port, deadline) for host, port, _ in addresses)
        results = await asyncio.gather(*polls)
        now = self._clock()
        failed: list[str] = []
        recovered: list[str] = []
        for (_, _, address), result in zip(addresses, results, strict=True):
            change = self._record(address, result, now)
            if change is not None:
                (failed if isinstance(result, PodError) else recovered).append(change)
        self._log_changes("failing", failed, logging.WARNING)
        self._log_changes("answering again", recovered, logging.INFO)

    async def _discover(self) -> None:
        try:
            addresses = await self._discovery.addresses()
        except DiscoveryError as exc:
            if self.discovery_error is None:
                log.warning("target %s: %s; keeping the last pod list", self.target.label, exc)
            self.discovery_error = str(exc)
            return
        if self.discovery_error is not None:
            log.info("target %s: discovery works again", self.target.label)
        self.discovery_error = None
        self._addresses = [(host, port, join_host_port(host, port)) for host, port in addresses]
        present = {address for _, _, address in self._addresses}
        for gone in self.pods.keys() - present:
            del self.pods[gone]
        for address in present - self.pods.keys():
            self.pods[address] = self._store.new_series(address)

    async def _discover_activators(self) -> None:
        """The activators now; a watch for each new one, none for those gone."""
        if self._activator_discovery is None:
            return
        try:
            found = await self._activator_discovery.addresses()
        except DiscoveryError as exc:
            log.warning("target %s: activators: %s; keeping the last list", self.target.label, exc)
            return
        self._activator_addresses = [
            (host, port, join_host_port(host, port)) for host, port in found
        ]
        present = {address for _, _, address in self._activator_addresses}
        for gone in self.activators.keys() - present:
            del self.activators[gone]
            self._watches.pop(gone).cancel()
        for host, port, address in self._activator_addresses:
            if address not in self.activators:
                self.activators[address] = ActivatorSeries()
                name = f"watch activator {address} of {self.target.label}"
                self._watches[address] = asyncio.create_task(self._watch(host, port), name=name)

    async def _poll_activators(self) -> None:
        if self._fetch_held is None:
            return
        polls = [self._held(host, port) for host, port, _ in self._activator_addresses]
        results = await asyncio.gather(*polls)
        for (_, _, address), result in zip(self._activator_addresses, results, strict=True):
            self._record_held(address, result)

    async def _held(self, host: str, port: int, **long_poll: float) -> HeldState | PodError:
        assert self._fetch_held is not None
        try:
            return await self._fetch_held(host, port, **long_poll)
        except PodError as exc:
            return exc

    async def _watch(self, host: str, port: int) -> None:
        """Long-poll one activator: a change of its queue (idle <-> held) is published
        at once, without waiting for the next cycle."""
        address, version = join_host_port(host, port), None
        while self._fetch_held is not None:
            if version is None:
                result = await self._held(host, port)
            else:
                result = await self._held(host, port, version=version, wait_s=LONG_POLL_S)
            self._record_held(address, result)
            if isinstance(result, PodError):
                await asyncio.sleep(self.poll_interval_s)
            elif result.version != version:
                if version is not None:
                    self.wake()
                version = result.version

    def _record_held(self, address: str, result: HeldState | PodError) -> None:
        series = self.activators.get(address)
        if series is None:  # gone meanwhile
            return
        if isinstance(result, PodError):
            if series.error is None:
                log.warning("target %s: activator %s: %s", self.target.label, address, result)
            series.error = str(result)
            return
        series.state, series.last_ok_at, series.error = result, self._clock(), None

    async def _poll(self, host: str, port: int, deadline: float) -> BucketState | PodError:
        # Each pod's timeout starts when its request goes out, not when the cycle starts,
        # and a cycle never runs much past one interval however many pods hang.
        async with self._in_flight, self._shared_in_flight:
            if self._clock() > deadline:
                return PodError("timeout", "not polled: the cycle ran out of time")
            try:
                return await self._fetch(host, port)
            except PodError as exc:
                return exc

    def _record(self, address: str, result: BucketState | PodError, now: float) -> str | None:
        """Store one pod's answer; return a note when the pod starts or stops failing."""
        series = self.pods[address]
        if isinstance(result, PodError):
            was_ok = not series.failed_last_poll
            self.pod_errors[result.reason] += 1
            series.fail(str(result))
            return f"{address} {result}" if was_ok else None
        recovered = series.failed_last_poll
        keep_s = self._keep_s()
        series.observe(result, now, keep_s, young_s=keep_s)
        return f"{address} ({result.pod})" if recovered else None

    def _log_changes(self, what: str, changes: list[str], level: int) -> None:
        if changes:
            shown = "; ".join(changes[:5])
            more = f" (and {len(changes) - 5} more)" if len(changes) > 5 else ""
            label, count = self.target.label, len(changes)
            log.log(level, "target %s: %d pod(s) %s: %s%s", label, count, what, shown, more)

    def _keep_s(self) -> float:
        """History kept per pod: enough for the longest window the readers asked for."""
        return max(MIN_KEEP_S, self.view.window_s + self.poll_interval_s)

    def _finish_cycle(self, now: float, duration_s: float) -> None:
        self.cycles += 1
        self.last_cycle_at = now
        fresh = self._publish(cycle_done=True)
        if fresh.has_data:
            self._last_refill_per_s = fresh.refill_per_s_per_pod
            self._last_capacity = fresh.capacity_per_pod
        if self._on_cycle is not None:
            self._on_cycle(self.target, duration_s)

    def _publish(self, *, cycle_done: bool) -> Aggregate:
        """Hand the readers this poll's answers, computed once for the windows they
        asked last: an RPC then only reads memory. Returns the aggregate over the
        longest window."""
        aggregates = {window_s: self.aggregate(window_s) for window_s in self.view.windows}
        reading = Reading(
            aggregates=aggregates,
            pods=tuple(_reading(address, series) for address, series in self.pods.items()),
            pod_errors=dict(self.pod_errors),
            discovery_error=self.discovery_error,
            activators=tuple(
                ActivatorReading(address, series.state, series.last_ok_at, series.error)
                for address, series in self.activators.items()
            ),
        )
        self.view.publish(reading, cycle_done=cycle_done)
        return aggregates[self.view.window_s]

    def aggregate(self, window_s: float) -> Aggregate:
        """The target now, from the pods' series (the writer's side: readers read the
        view)."""
        return aggregate(
            self.pods.values(),
            now=self._clock(),
            window_s=window_s,
            fresh_for_s=self.fresh_for_s,
            fallback_refill_per_s=self._last_refill_per_s,
            fallback_capacity=self._last_capacity,
            held=self._fresh_held(),
        )

    def _fresh_held(self) -> list[HeldState]:
        now = self._clock()
        return [
            series.state
            for series in self.activators.values()
            if series.state is not None and now - series.last_ok_at <= self.fresh_for_s
        ]


def _reading(address: str, series: PodSeries) -> PodReading:
    return PodReading(
        address=address,
        state=series.state,
        last_ok_at=series.last_ok_at,
        demand_per_s=series.fast_rate(),
        restarts=series.restarts,
        error=series.last_error,
    )

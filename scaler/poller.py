"""The background poller of one target: every interval, all its pods in parallel.

The writer side of the scaler. RPCs never wait on pods, nor call the poller: they
read the target's `TargetView`, into which the poller publishes a `Reading` after
each cycle (the aggregates over the windows the view's readers asked for, each pod's
last answer, the failures). The poller takes its pod lookup and its fetch function as
arguments, so tests can drive it. The pods themselves are its `PodShards`: one
`PodShard` in this process (`LocalPods`), whose table of the `SeriesStore` it writes,
or shards in worker processes (`scaler.workers.WorkerPods`, wired by the server); each
cycle it combines their `Partial` sums with what the activators hold.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from scaler.aggregation import Aggregate, Partial, combine
from scaler.discovery import Discovery, DiscoveryError
from scaler.held_state import HeldState
from scaler.pod_errors import PodError, PodErrorReason
from scaler.readmodel import (
    ActivatorReading,
    PodReading,
    PodRow,
    Reading,
    TargetView,
    pod_from_row,
)
from scaler.shard import (
    MAX_IN_FLIGHT,
    MAX_IN_FLIGHT_TOTAL,
    Fetch,
    LocalPods,
    PodShard,
    PodShards,
    PodTable,
    PollRequest,
    SeriesStore,
    ShardReport,
)
from scaler.target_key import TargetKey, join_host_port

log = logging.getLogger("scaler.poller")

Clock = Callable[[], float]
FetchHeld = Callable[..., Awaitable[HeldState]]
"""GET an activator's `/v1/held` at (host, port), with `version=` and `wait_s=` a long
poll; raises PodError when there is no usable answer."""
LONG_POLL_S = 20.0  # an activator answers a watch at once on a change, or after this
CycleObserver = Callable[[TargetKey, float], None]
"""Told each finished cycle's target and duration (`/metrics`' poll histogram)."""
MIN_KEEP_S = 5.0  # history kept per pod before anyone asked for a longer window
__all__ = ["MAX_IN_FLIGHT_TOTAL", "SeriesStore", "TargetPoller", "until_next_tick"]


@dataclass(slots=True)
class ActivatorSeries:
    """What one activator said last."""

    state: HeldState | None = None
    last_ok_at: float = -math.inf
    error: str | None = None


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
        shards: PodShards | None = None,
    ) -> None:
        self.target = target
        self.poll_interval_s = poll_interval_s
        if view is None:
            view = TargetView(target, poll_interval_s=poll_interval_s, clock=clock)
        self.view = view  # what readers see; this poller alone publishes into it
        view.computes_with(self.aggregate)
        self.pods: PodTable = {}  # in this process: address -> PodSeries; empty with workers
        if shards is None:  # in this process, as one shard
            if shared_in_flight is None:
                shared_in_flight = asyncio.Semaphore(MAX_IN_FLIGHT_TOTAL)
            shard = PodShard(
                target.label,
                fetch,
                store=store if store is not None else SeriesStore(),
                clock=clock,
                max_in_flight=max_in_flight,
                shared_in_flight=shared_in_flight,
            )
            self.pods = shard.table
            shards = LocalPods(shard)
        self._shards = shards  # the pods' side: this process, or worker processes
        self.discovery_error: str | None = None
        self.cycles = 0
        self.pod_errors: Counter[PodErrorReason] = Counter()  # failed polls of single pods
        self.last_cycle_at = -1.0
        self._discovery = discovery
        self._clock = clock
        self._on_cycle = on_cycle
        self._addresses: list[tuple[str, int, str]] = []
        self._partials: dict[float, list[Partial]] = {}  # by window, from the last reports
        self._pod_rows: tuple[PodRow, ...] = ()  # each pod as the last cycle left it
        self._newest_ok_at = -math.inf  # of the sums aggregated last
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

    @property
    def pod_readings(self) -> tuple[PodReading, ...]:
        """Each pod as the last cycle left it, whichever process polled it."""
        return tuple(pod_from_row(row) for row in self._pod_rows)

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
        await self._shards.close()
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
        request = self._request(new_only=False, deadline=started + self.poll_interval_s)
        reports, _ = await asyncio.gather(self._shards.cycle(request), self._poll_activators())
        self._take(reports)
        now = self._clock()
        self._finish_cycle(now, now - started)

    async def poll_new(self) -> None:
        """Between cycles: discover, and poll only pods that have never answered.

        A new pod's first answer gives no rate, so taking it now gives the pod a rate at
        the next cycle. Pods that left are dropped from the totals at once.
        """
        await self._discover()
        await self._discover_activators()
        request = self._request(new_only=True, deadline=self._clock() + self.poll_interval_s)
        self._take(await self._shards.cycle(request))
        self._publish(cycle_done=False)

    def _request(self, *, new_only: bool, deadline: float) -> PollRequest:
        return PollRequest(
            new_only=new_only,
            deadline=deadline,
            keep_s=self._keep_s(),
            windows=tuple(dict.fromkeys(self.view.windows)),
            fresh_for_s=self.fresh_for_s,
        )

    def _take(self, reports: list[ShardReport]) -> None:
        """The shards' sums of this cycle, kept until the next one."""
        self._partials = {}
        for report in reports:
            for window_s, summed in report.partials.items():
                self._partials.setdefault(window_s, []).append(summed)
            self.pod_errors.update(report.pod_errors)
        readings = [report.pods for report in reports if report.pods is not None]
        if readings:
            self._pod_rows = tuple(row for rows in readings for row in rows)

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
        found = [(host, port, join_host_port(host, port)) for host, port in addresses]
        if found != self._addresses:
            self._addresses = found
            self._shards.set_addresses(found)

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
            pod_rows=self._pod_rows,
            pod_errors=dict(self.pod_errors),
            discovery_error=self.discovery_error,
            activators=tuple(
                ActivatorReading(address, series.state, series.last_ok_at, series.error)
                for address, series in self.activators.items()
            ),
            newest_ok_at=self._newest_ok_at,
        )
        self.view.publish(reading, cycle_done=cycle_done)
        return aggregates[self.view.window_s]

    def aggregate(self, window_s: float) -> Aggregate:
        """The target now, from the shards' sums (the writer's side: readers read the
        view). In this process the sums are taken now; from worker processes, those of
        the last cycle, or of the nearest window there until `prepare` fetched it."""
        parts = self._shards.partials_now(window_s, self.fresh_for_s)
        if parts is None:
            parts = self._partials.get(window_s)
        if parts is None:
            parts = self._nearest_partials(window_s)
        # Each pod's last answer is the same in every window's sums.
        self._newest_ok_at = max((part.newest_ok_at for part in parts), default=-math.inf)
        return combine(
            parts,
            self._clock(),
            self._last_refill_per_s,
            self._last_capacity,
            held=self._fresh_held(),
        )

    def _nearest_partials(self, window_s: float) -> list[Partial]:
        if not self._partials:
            return []
        nearest = min(self._partials, key=lambda known: abs(known - window_s))
        return self._partials[nearest]

    async def prepare(self, window_s: float) -> None:
        """Have the sums over `window_s` at hand before a reader asks for them (a new
        ScaledObject's window on a target already polled by worker processes)."""
        if self.cycles == 0 or window_s in self._partials or isinstance(self._shards, LocalPods):
            return  # the first cycle sums every window asked before it
        parts = await self._shards.partials(window_s, self.fresh_for_s)
        self._partials[window_s] = parts

    def _fresh_held(self) -> list[HeldState]:
        now = self._clock()
        return [
            series.state
            for series in self.activators.values()
            if series.state is not None and now - series.last_ok_at <= self.fresh_for_s
        ]

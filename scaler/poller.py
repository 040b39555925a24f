"""The background poller of one target: every interval, all its pods in parallel.

RPCs never wait on pods: they read what the last cycle left in memory. The poller
takes its pod lookup and its fetch function as arguments, so tests can drive it;
it writes each answer into its table of the `SeriesStore`, and after each cycle
computes the aggregates (and each trigger's `Answer`) that the RPCs and `/metrics`
read.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from scaler.aggregation import Aggregate, aggregate
from scaler.bucket_state import BucketState
from scaler.discovery import Discovery, DiscoveryError
from scaler.pod_errors import PodError, PodErrorReason
from scaler.scaling import Answer, answer
from scaler.snapshot import TargetSnapshot, pod_view
from scaler.store import SeriesStore
from scaler.target_key import TargetKey, join_host_port
from scaler.trigger import TriggerConfig

log = logging.getLogger("scaler.poller")

Clock = Callable[[], float]
Fetch = Callable[[str, int], Awaitable[BucketState]]
"""GET one pod's `/v1/bucket` at (host, port); raises PodError when there is no usable answer."""
CycleObserver = Callable[["TargetPoller", float], None]
STALE_AFTER_POLLS = 3  # a pod's last answer counts this many intervals after it came
MAX_IN_FLIGHT = 4  # per target: an RPC waits behind at most this many answers per loop turn
MAX_IN_FLIGHT_TOTAL = 64  # per process, shared by every target (--max-in-flight)
MIN_KEEP_S = 5.0  # history kept per pod before anyone asked for a longer window
PRECOMPUTED_WINDOWS = 8  # the windows asked last, whose answers each cycle computes


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
    ) -> None:
        self.target = target
        self.poll_interval_s = poll_interval_s
        self._store = store if store is not None else SeriesStore()
        self.pods = self._store.open()  # address -> PodSeries; this poller alone writes it
        self.discovery_error: str | None = None
        self.cycles = 0
        self.pod_errors: Counter[PodErrorReason] = Counter()  # failed polls of single pods
        self.last_cycle_at = -1.0
        self.last_used_at = clock()
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
        self.window_s = 0.0  # the longest averaging window asked for
        self._windows: dict[float, None] = {}  # the last windows asked, oldest first
        self._keep_s = MIN_KEEP_S
        self._cache: dict[float, Aggregate] = {}
        self._answers: dict[int, tuple[TriggerConfig, Answer]] = {}  # by id(trigger)
        self._last_refill_per_s: float | None = None  # from the last cycle any pod answered
        self._last_capacity: float | None = None
        self._cycle_done = asyncio.Condition()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def fresh_for_s(self) -> float:
        return STALE_AFTER_POLLS * self.poll_interval_s

    def start(self) -> None:
        self._discovery.start(self.wake)
        self._task = asyncio.create_task(self._run(), name=f"poll {self.target.label}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._store.close(self.pods)
        await self._discovery.close()

    def wake(self) -> None:
        """Discovery saw the pods change: poll the new ones now, not at the next cycle."""
        self._wake.set()

    def touch(self, window_s: float) -> None:
        """Someone asked about this target; keep enough history for their window, and
        compute its answer at each cycle."""
        self.last_used_at = self._clock()
        self._windows.pop(window_s, None)
        self._windows[window_s] = None
        if len(self._windows) > PRECOMPUTED_WINDOWS:
            del self._windows[next(iter(self._windows))]
        self.window_s = max(self.window_s, window_s)
        self._keep_s = max(self._keep_s, window_s + self.poll_interval_s)

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
        """One cycle: discover, then every pod in parallel; RPCs see the result at once."""
        started = self._clock()
        await self._discover()
        # The pods that answered longest ago go first: when the cycle runs out of time,
        # the pods it could not reach are the first of the next one, never the same ones.
        by_last_answer = sorted(self._addresses, key=lambda entry: self.pods[entry[2]].last_ok_at)
        await self._poll_all(by_last_answer, started + self.poll_interval_s)
        now = self._clock()
        self._finish_cycle(now, now - started)
        async with self._cycle_done:
            self._cycle_done.notify_all()

    async def poll_new(self) -> None:
        """Between cycles: discover, and poll only pods that have never answered.

        A new pod's first answer gives no rate, so taking it now gives the pod a rate at
        the next cycle. Pods that left are dropped from the totals at once.
        """
        await self._discover()
        new = [entry for entry in self._addresses if self.pods[entry[2]].state is None]
        await self._poll_all(new, self._clock() + self.poll_interval_s)
        self._precompute()

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
        series.observe(result, now, self._keep_s)
        return f"{address} ({result.pod})" if recovered else None

    def _log_changes(self, what: str, changes: list[str], level: int) -> None:
        if changes:
            shown = "; ".join(changes[:5])
            more = f" (and {len(changes) - 5} more)" if len(changes) > 5 else ""
            label, count = self.target.label, len(changes)
            log.log(level, "target %s: %d pod(s) %s: %s%s", label, count, what, shown, more)

    def _finish_cycle(self, now: float, duration_s: float) -> None:
        self.cycles += 1
        self.last_cycle_at = now
        fresh = self._precompute()
        if fresh.has_data:
            self._last_refill_per_s = fresh.refill_per_s_per_pod
            self._last_capacity = fresh.capacity_per_pod
        if self._on_cycle is not None:
            self._on_cycle(self, duration_s)

    def _precompute(self) -> Aggregate:
        """The answers of this cycle, once, for the windows asked last: an RPC then only
        reads memory. Returns the aggregate over the longest window."""
        self._cache.clear()
        self._answers.clear()
        for window_s in self._windows:
            self.aggregate(window_s)
        return self.aggregate(self.window_s)

    def data_age_s(self) -> float:
        """Seconds since any pod of the target last answered, now (inf if none ever did)."""
        newest = max((series.last_ok_at for series in self.pods.values()), default=-math.inf)
        return self._clock() - newest

    def has_fresh_data(self) -> bool:
        return self.aggregate(self.window_s).has_data

    def snapshot(self) -> TargetSnapshot:
        """The target now, read-only, on this poller's clock; over the longest window asked."""
        now = self._clock()
        agg = self.aggregate(self.window_s)
        return TargetSnapshot(
            target=self.target,
            taken_at=now,
            cycles=self.cycles,
            window_s=self.window_s,
            aggregate=agg,
            data_age_s=self.data_age_s(),
            discovery_error=self.discovery_error,
            problem=None if agg.has_data else self.failure_summary(),
            pod_errors=dict(self.pod_errors),
            pods=tuple(
                pod_view(address, series, now, self.fresh_for_s)
                for address, series in self.pods.items()
            ),
        )

    def aggregate(self, window_s: float) -> Aggregate:
        """The target now, from memory; cached until the next cycle."""
        cached = self._cache.get(window_s)
        if cached is None:
            cached = aggregate(
                self.pods.values(),
                now=self._clock(),
                window_s=window_s,
                fresh_for_s=self.fresh_for_s,
                fallback_refill_per_s=self._last_refill_per_s,
                fallback_capacity=self._last_capacity,
            )
            self._cache[window_s] = cached
        return cached

    def answer(self, trigger: TriggerConfig) -> Answer:
        """What the RPCs and `/metrics` say of `trigger` now; computed once per cycle."""
        cached = self._answers.get(id(trigger))
        if cached is None or cached[0] is not trigger:
            cached = self._answers[id(trigger)] = (
                trigger,
                answer(trigger, self.aggregate(trigger.window_s)),
            )
        return cached[1]

    async def wait_first_cycle(self, timeout_s: float) -> None:
        await self.wait_cycle_after(0, timeout_s)

    async def wait_cycle_after(self, cycle: int, timeout_s: float | None = None) -> None:
        """Wait until a cycle later than `cycle` has finished (or the timeout passes)."""
        async with self._cycle_done:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._cycle_done.wait_for(lambda: self.cycles > cycle)
            except TimeoutError:
                pass

    def failure_summary(self) -> str:
        """Why there is no fresh data, in one line for an UNAVAILABLE status."""
        if self.cycles == 0:
            return f"target {self.target.label}: first poll still running"
        if not self.pods:
            why = self.discovery_error or "no pods found"
            return f"target {self.target.label}: {why}"
        failing = [f"{addr} {pod.last_error}" for addr, pod in self.pods.items() if pod.last_error]
        more = f" (and {len(failing) - 5} more)" if len(failing) > 5 else ""
        detail = "; ".join(failing[:5]) + more or "not polled yet"
        return f"target {self.target.label}: no fresh data from {len(self.pods)} pod(s): {detail}"

"""One shard of a target's pods: their series, polled and summed.

`PodShard` is the pod side of a poller: it keeps the table of `PodSeries` of the pods it
was handed, fetches each one's `/v1/bucket` in a cycle, records the answers, and sums
them into a `Partial` per window. The poller drives it in its own process (`LocalPods`,
`--poll-workers 0`), or a worker process drives one per target for the pods that hash to
it (`scaler.worker`), and the poller combines the workers' `ShardReport`s. Either way the
maths is `aggregation.partial` then `combine`, so the answer does not depend on the split.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from scaler.aggregation import Partial, partial
from scaler.bucket_state import BucketState
from scaler.pod_errors import PodError, PodErrorReason
from scaler.readmodel import PodRow
from scaler.series import PodSeries

log = logging.getLogger("scaler.poller")

Clock = Callable[[], float]
Fetch = Callable[[str, int], Awaitable[BucketState]]
"""GET one pod's `/v1/bucket` at (host, port); raises PodError when there is no usable answer."""
Address = tuple[str, int, str]  # host, port, "host:port"
PodTable = dict[str, PodSeries]
MAX_IN_FLIGHT = 4  # per target: an RPC waits behind at most this many answers per loop turn
MAX_IN_FLIGHT_TOTAL = 64  # per process, shared by every target (--max-in-flight)


class SeriesStore:
    """The pod series of every target: what the pollers write and aggregate.

    Each poller opens one table (pod address -> `PodSeries`) and is the only writer of
    it. A pod new to a table starts from the freshest series any other table keeps of
    the same pod: a ScaledObject whose `endpoints` list changes names a new target, and
    its pods that were polled before keep their rate instead of starting from nothing.
    The copy is independent, so two targets never write the same series. With worker
    processes each worker has a store of its own, and a pod hashes to the same worker
    for every target, so the copy still finds it.
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


@dataclass(frozen=True, slots=True)
class PollRequest:
    """One cycle of a shard: which pods, until when, and what to sum afterwards."""

    new_only: bool  # between cycles: only pods that never answered
    deadline: float  # on the monotonic clock; a pod whose turn comes later is not polled
    keep_s: float  # history kept per pod
    windows: tuple[float, ...]
    fresh_for_s: float
    with_pods: bool = True  # each pod's last answer, for /v1/targets


@dataclass(frozen=True, slots=True)
class ShardReport:
    """What a shard hands on after a cycle: compact, and all the poller needs."""

    partials: Mapping[float, Partial]  # by window
    pods: tuple[PodRow, ...] | None  # None: not asked for (keep the last ones)
    pod_errors: Mapping[PodErrorReason, int] = field(default_factory=dict)  # since the last


class PodShard:
    """The series of one shard of a target's pods, and one cycle over them."""

    def __init__(
        self,
        label: str,
        fetch: Fetch,
        *,
        store: SeriesStore,
        clock: Clock = time.monotonic,
        max_in_flight: int = MAX_IN_FLIGHT,
        shared_in_flight: asyncio.Semaphore | None = None,
    ) -> None:
        self.label = label
        self._fetch = fetch
        self._store = store
        self._clock = clock
        self.table = store.open()  # address -> PodSeries; this shard alone writes it
        self.addresses: list[Address] = []
        self._errors: Counter[PodErrorReason] = Counter()  # since the last report
        self._in_flight = asyncio.Semaphore(max_in_flight)
        # The process-wide cap: every shard of the process holds the same semaphore. Its
        # waiters queue in order, and a target queues at most `max_in_flight` of them at
        # a time, so a target with many pods cannot starve one with few.
        if shared_in_flight is None:
            shared_in_flight = asyncio.Semaphore(MAX_IN_FLIGHT_TOTAL)
        self._shared_in_flight = shared_in_flight

    def set_addresses(self, addresses: Sequence[Address]) -> None:
        """The pods of this shard now: those gone are dropped, new ones get a series."""
        self.addresses = list(addresses)
        present = {address for _, _, address in self.addresses}
        for gone in self.table.keys() - present:
            del self.table[gone]
        for address in present - self.table.keys():
            self.table[address] = self._store.new_series(address)

    def close(self) -> None:
        self._store.close(self.table)

    async def cycle(self, request: PollRequest) -> ShardReport:
        """Poll, then sum: one cycle of this shard, as its poller asked."""
        await self.poll(request.new_only, request.deadline, request.keep_s)
        return self.report(request.windows, request.fresh_for_s, with_pods=request.with_pods)

    async def poll(self, new_only: bool, deadline: float, keep_s: float) -> None:
        """Every pod, the ones that answered longest ago first (when the cycle runs out
        of time, the pods it could not reach are the first of the next one, never the
        same ones); or, `new_only`, the pods that never answered."""
        table = self.table
        if new_only:
            addresses = [entry for entry in self.addresses if table[entry[2]].state is None]
        else:
            addresses = sorted(self.addresses, key=lambda entry: table[entry[2]].last_ok_at)
        polls = (self._poll(host, port, deadline) for host, port, _ in addresses)
        results = await asyncio.gather(*polls)
        now = self._clock()
        failed: list[str] = []
        recovered: list[str] = []
        for (_, _, address), result in zip(addresses, results, strict=True):
            change = self._record(address, result, now, keep_s)
            if change is not None:
                (failed if isinstance(result, PodError) else recovered).append(change)
        self._log_changes("failing", failed, logging.WARNING)
        self._log_changes("answering again", recovered, logging.INFO)

    def report(
        self, windows: Iterable[float], fresh_for_s: float, *, with_pods: bool
    ) -> ShardReport:
        now = self._clock()
        partials = {window: self.partial(window, fresh_for_s, now) for window in windows}
        errors, self._errors = dict(self._errors), Counter()
        return ShardReport(partials, self.pod_readings() if with_pods else None, errors)

    def partial(self, window_s: float, fresh_for_s: float, now: float) -> Partial:
        return partial(self.table.values(), now, window_s, fresh_for_s)

    def pod_readings(self) -> tuple[PodRow, ...]:
        return tuple(_row(address, series) for address, series in self.table.items())

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

    def _record(
        self, address: str, result: BucketState | PodError, now: float, keep_s: float
    ) -> str | None:
        """Store one pod's answer; return a note when the pod starts or stops failing."""
        series = self.table[address]
        if isinstance(result, PodError):
            was_ok = not series.failed_last_poll
            self._errors[result.reason] += 1
            series.fail(str(result))
            return f"{address} {result}" if was_ok else None
        recovered = series.failed_last_poll
        series.observe(result, now, keep_s, young_s=keep_s)
        return f"{address} ({result.pod})" if recovered else None

    def _log_changes(self, what: str, changes: list[str], level: int) -> None:
        if changes:
            shown = "; ".join(changes[:5])
            more = f" (and {len(changes) - 5} more)" if len(changes) > 5 else ""
            log.log(
                level, "target %s: %d pod(s) %s: %s%s", self.label, len(changes), what, shown, more
            )


class PodShards(Protocol):
    """A target's pods for its poller, however they are split: `LocalPods` in the
    poller's own process, or `scaler.workers.WorkerPods` across worker processes."""

    def set_addresses(self, addresses: Sequence[Address]) -> None: ...

    async def cycle(self, request: PollRequest) -> list[ShardReport]: ...

    async def partials(self, window_s: float, fresh_for_s: float) -> list[Partial]: ...

    def partials_now(self, window_s: float, fresh_for_s: float) -> list[Partial] | None:
        """The sums over a window now, when that needs no wait (None: it does)."""
        ...

    async def close(self) -> None: ...


class LocalPods:
    """All of a target's pods in one shard, polled in the poller's own event loop."""

    def __init__(self, shard: PodShard) -> None:
        self.shard = shard

    def set_addresses(self, addresses: Sequence[Address]) -> None:
        self.shard.set_addresses(addresses)

    async def cycle(self, request: PollRequest) -> list[ShardReport]:
        """Poll; the poller sums the table itself when it publishes (`partials_now`)."""
        await self.shard.poll(request.new_only, request.deadline, request.keep_s)
        return [self.shard.report((), request.fresh_for_s, with_pods=request.with_pods)]

    async def partials(self, window_s: float, fresh_for_s: float) -> list[Partial]:
        return self.partials_now(window_s, fresh_for_s)

    def partials_now(self, window_s: float, fresh_for_s: float) -> list[Partial]:
        return [self.shard.partial(window_s, fresh_for_s, self.shard._clock())]

    async def close(self) -> None:
        self.shard.close()


def _row(address: str, series: PodSeries) -> PodRow:
    """`readmodel.pod_row` of the pod's reading, without building the reading."""
    state = series.state
    fields = None if state is None else (
        state.pod, state.boot_id, state.uptime_s, state.capacity, state.refill_per_s,
        state.tokens, state.granted_total, state.denied_total,
    )  # fmt: skip
    return (
        address, fields, series.last_ok_at, series.fast_rate(), series.restarts,
        series.last_error,
    )  # fmt: skip


NO_DATA = Partial(0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, -math.inf)
"""The sums of an empty shard."""

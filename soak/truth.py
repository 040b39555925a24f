"""What each pod truly received: its own counters, read from `/v1/bucket` every second.

`granted_total + denied_total` is every request the pod counted, 429s included. Within
one boot it only grows; a restart begins again from 0 with a new `boot_id`.
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass, field

import aiohttp

from soak.under_test import Clock, Pod, pause

READ_TIMEOUT_S = 0.5


@dataclass(frozen=True, slots=True)
class Reading:
    at: float
    boot_id: str
    uptime_s: float
    requested: int


@dataclass(slots=True)
class Truth:
    readings: dict[int, list[Reading]] = field(default_factory=dict)

    def add(self, pod: int, reading: Reading) -> None:
        self.readings.setdefault(pod, []).append(reading)

    def received_rate(self, pod: int, start: float, end: float) -> float | None:
        """Requests per second the pod counted over [start, end], on its own clock; None
        without two readings of one boot spanning at least half of it."""
        readings = self.readings.get(pod, [])
        low = bisect.bisect_left(readings, start, key=lambda r: r.at)
        inside = readings[low : bisect.bisect_right(readings, end, key=lambda r: r.at)]
        if not inside:
            return None
        last = inside[-1]
        first = next(r for r in inside if r.boot_id == last.boot_id)
        span = last.uptime_s - first.uptime_s
        if span <= 0 or span < (end - start) / 2:
            return None
        return (last.requested - first.requested) / span

    def received_total(self, pod: int) -> int:
        """Every request the pod counted, summed over its boots (as last read)."""
        last_of_boot: dict[str, int] = {}
        for reading in self.readings.get(pod, []):
            last_of_boot[reading.boot_id] = reading.requested
        return sum(last_of_boot.values())

    def mean_rate(self, pod: int) -> float:
        """Requests per second the pod counted while it was read, over all its boots."""
        counted = seconds = 0.0
        for boot in dict.fromkeys(r.boot_id for r in self.readings.get(pod, [])):
            mine = [r for r in self.readings[pod] if r.boot_id == boot]
            counted += mine[-1].requested - mine[0].requested
            seconds += mine[-1].uptime_s - mine[0].uptime_s
        return counted / seconds if seconds > 0 else 0.0

    def boots(self, pod: int) -> int:
        return len({reading.boot_id for reading in self.readings.get(pod, [])})

    async def run(
        self, http: aiohttp.ClientSession, pods: list[Pod], clock: Clock, every_s: float,
        until: float,
    ) -> None:  # fmt: skip
        while clock() < until:
            await asyncio.gather(*(self._read(http, pod, clock) for pod in pods))
            await pause(every_s, clock, until)

    async def _read(self, http: aiohttp.ClientSession, pod: Pod, clock: Clock) -> None:
        url = f"http://{pod.api.admin_address}/v1/bucket"
        try:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=READ_TIMEOUT_S)) as r:
                state = await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return  # down or frozen: no reading
        if state is not None:
            requested = int(state["granted_total"]) + int(state["denied_total"])
            self.add(pod.index, Reading(clock(), state["boot_id"], state["uptime_s"], requested))

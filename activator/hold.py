"""Where requests wait for a ready pod: the ready set, and the queue of held requests.

A request that arrives while a pod is ready gets one at once (round robin). One that
arrives while none is ready is held, in arrival order, until a pod is ready (it is
then handed one, in the order the requests came), until `hold_timeout_s` passes
(`TimedOut`), or refused at once while `max_held` are already waiting (`Full`).

`version` changes each time the queue turns from empty to held or back: the scaler
waits on it (`/v1/held?version=`) to learn of the first held request at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Clock = Callable[[], float]


class Full(Exception):
    """`max_held` requests are already waiting."""


class TimedOut(Exception):
    """No pod was ready within the hold timeout."""


@dataclass(slots=True)
class _Waiter:
    arrived_at: float
    pod: asyncio.Future[str]


@dataclass(frozen=True, slots=True)
class HeldState:
    """What `/v1/held` reports: the queue now and its counters."""

    held: int
    oldest_held_s: float
    held_total: int
    timed_out_total: int
    refused_full_total: int
    pods_ready: int
    version: int


class Holds:
    def __init__(self, *, max_held: int, clock: Clock = time.monotonic) -> None:
        self.max_held = max_held
        self.held_total = 0
        self.timed_out_total = 0
        self.refused_full_total = 0
        self.version = 0
        self._pods: tuple[str, ...] = ()
        self._next = 0
        self._waiting: deque[_Waiter] = deque()
        self._clock = clock
        self._changed = asyncio.Event()
        self._active = False  # anything held, as `version` last told

    @property
    def pods(self) -> tuple[str, ...]:
        return self._pods

    @property
    def held(self) -> int:
        return len(self._waiting)

    def set_pods(self, pods: Sequence[str]) -> None:
        """The ready pods now; held requests get theirs at once, oldest first."""
        self._pods = tuple(dict.fromkeys(pods))
        self._next = 0
        self._hand_out()
        self._note_change()

    def ready_pod(self) -> str | None:
        """A ready pod for a request that need not wait, if there is one and nobody
        waits before it."""
        return self._pick() if self._pods and not self._waiting else None

    async def wait_for_pod(self, timeout_s: float) -> str:
        """Hold the caller until a pod is ready; raises Full or TimedOut."""
        if len(self._waiting) >= self.max_held:
            self.refused_full_total += 1
            raise Full
        waiter = _Waiter(self._clock(), asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        self.held_total += 1
        # The caller found no ready pod, but a pod may have become ready before this
        # ran: queued behind that change, the request would wait for the next one.
        self._hand_out()
        self._note_change()
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter.pod
        except TimeoutError:
            self.timed_out_total += 1
            raise TimedOut from None
        finally:
            if waiter in self._waiting:  # timed out, or the client went away
                self._waiting.remove(waiter)
                self._note_change()

    def state(self) -> HeldState:
        oldest = self._clock() - self._waiting[0].arrived_at if self._waiting else 0.0
        return HeldState(
            held=len(self._waiting),
            oldest_held_s=oldest,
            held_total=self.held_total,
            timed_out_total=self.timed_out_total,
            refused_full_total=self.refused_full_total,
            pods_ready=len(self._pods),
            version=self.version,
        )

    async def wait_change(self, version: int, timeout_s: float) -> None:
        """Return once `version` is not the current one, or after `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                while self.version == version:
                    await self._changed.wait()
        except TimeoutError:
            pass

    def _hand_out(self) -> None:
        """Each held request gets a ready pod, oldest first, while there is one."""
        while self._pods and self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.pod.done():  # a request that timed out has left already
                waiter.pod.set_result(self._pick())

    def _pick(self) -> str:
        pod = self._pods[self._next % len(self._pods)]
        self._next += 1
        return pod

    def _note_change(self) -> None:
        active = bool(self._waiting)
        if active != self._active:
            self._active = active
            self.version += 1
            self._changed.set()
            self._changed = asyncio.Event()

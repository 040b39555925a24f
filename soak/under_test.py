"""The processes under test: rating pods and the scaler, started, stopped and hurt for real.

Every change of a pod's state is written to a `Timeline`, so the checks can later tell
whether a pod was surely serving while the scaler said something.
"""

from __future__ import annotations

import asyncio
import bisect
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness import Child, RatingApi, RatingScaler, wait_http_ok_async
from soak.settings import HOST, Settings

State = Literal["down", "up", "stopped"]
Clock = Callable[[], float]  # seconds since the run started


async def pause(seconds: float, clock: Clock, until: float) -> None:
    """Sleep `seconds`, but never past `until`: loops that check `until` end on time."""
    await asyncio.sleep(max(0.0, min(seconds, until - clock())))


@dataclass(slots=True)
class Timeline:
    """Each pod's states over time: (seconds, state), in order, from `down` at 0."""

    transitions: dict[int, list[tuple[float, State]]] = field(default_factory=dict)

    def mark(self, pod: int, state: State, at: float) -> None:
        self.transitions.setdefault(pod, []).append((at, state))

    def state_at(self, pod: int, at: float) -> State:
        marks = self.transitions.get(pod, [])
        index = bisect.bisect_right(marks, at, key=lambda mark: mark[0])
        return marks[index - 1][1] if index else "down"

    def up_throughout(self, pod: int, start: float, end: float) -> bool:
        """True when the pod was serving, unfrozen, over all of [start, end]."""
        if self.state_at(pod, start) != "up":
            return False
        marks = self.transitions.get(pod, [])
        first = bisect.bisect_right(marks, start, key=lambda mark: mark[0])
        last = bisect.bisect_right(marks, end, key=lambda mark: mark[0])
        return all(state == "up" for _, state in marks[first:last])

    def away_throughout(self, pod: int, start: float, end: float) -> bool:
        """True when the pod was down or frozen over all of [start, end]."""
        if self.state_at(pod, start) == "up":
            return False
        marks = self.transitions.get(pod, [])
        first = bisect.bisect_right(marks, start, key=lambda mark: mark[0])
        last = bisect.bisect_right(marks, end, key=lambda mark: mark[0])
        return all(state != "up" for _, state in marks[first:last])


class Pod:
    """A `rating-api` process that keeps its ports across restarts."""

    def __init__(self, index: int, settings: Settings, log_dir: Path, clock: Clock) -> None:
        self.index = index
        self.name = f"rating-api-{index}"
        self.api = RatingApi(
            pod_name=self.name,
            bucket_capacity=settings.bucket_capacity,
            bucket_rate=settings.bucket_rate,
            log_level="warning",
        )
        self.child = Child(self.name, self.api.argv(), log_dir / f"{self.name}.log")
        self._clock = clock

    async def start(self, timeline: Timeline) -> float:
        """Start, wait until `/readyz` answers 200; returns (and marks) that moment."""
        self.child.start()
        await wait_http_ok_async(f"http://{HOST}:{self.api.port}/readyz", self.child)
        ready_at = self._clock()
        timeline.mark(self.index, "up", ready_at)
        return ready_at

    def kill(self, timeline: Timeline) -> None:
        timeline.mark(self.index, "down", self._clock())
        self.child.signal(signal.SIGKILL)

    async def terminate(self, timeline: Timeline) -> None:
        """SIGTERM and wait for the exit (drain included)."""
        timeline.mark(self.index, "down", self._clock())
        await self.child.stop_async()

    def freeze(self, timeline: Timeline) -> None:
        timeline.mark(self.index, "stopped", self._clock())
        self.child.signal(signal.SIGSTOP)

    def thaw(self, timeline: Timeline) -> float:
        self.child.signal(signal.SIGCONT)
        at = self._clock()
        timeline.mark(self.index, "up", at)
        return at


class Scaler:
    """The `rating-scaler` process."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.service = RatingScaler(
            poll_interval_s=settings.poll_interval_s,
            pod_timeout_s=settings.pod_timeout_s,
            extra=settings.extra_scaler_args,
        )
        self.child = Child(self.service.name, self.service.argv(), log_dir / "rating-scaler.log")

    @property
    def grpc_target(self) -> str:
        return self.service.grpc_target

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.service.http_port}{path}"

    async def start(self) -> None:
        self.child.start()
        await wait_http_ok_async(self.url("/healthz"), self.child)


class Cluster:
    """The scaler and the pods of one run; `close` leaves nothing running."""

    def __init__(self, settings: Settings, log_dir: Path, clock: Clock) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.timeline = Timeline()
        self.scaler = Scaler(settings, log_dir)
        self.pods = [Pod(index, settings, log_dir, clock) for index in range(settings.pods)]

    @property
    def children(self) -> list[Child]:
        return [self.scaler.child, *(pod.child for pod in self.pods)]

    async def start(self) -> None:
        await asyncio.gather(self.scaler.start(), *(pod.start(self.timeline) for pod in self.pods))

    async def close(self) -> int:
        """Stop the pods, then the scaler; returns the scaler's exit code."""
        await asyncio.gather(*(pod.child.stop_async() for pod in self.pods))
        return await self.scaler.child.stop_async()

    def admin_addresses(self, indexes: Sequence[int]) -> str:
        return ",".join(self.pods[index].api.admin_address for index in indexes)

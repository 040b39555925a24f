"""A Deployment's pods as real `rating-api` processes, kept at the count its HPA sets.

What a ReplicaSet and the kubelet do, on this machine:
- a new pod is a new process: it takes its real start-up time and joins the load
  balancer only once its `/readyz` answers;
- a removed pod leaves the load balancer at once, keeps running for the Deployment's
  preStop sleep (5 s, so that no proxy still sends to it), then gets SIGTERM and drains
  its requests itself; SIGKILL after the grace period;
- which pod goes is the ReplicaSet's choice: one that is not ready first, then the one
  ready for the shortest time, then the newest;
- a pod that exits on its own is replaced.

Each fleet spawns its processes from a thread of its own, as each node's kubelet starts
its pods by itself: a fleet that starts 13 pods neither holds up the event loop nor
delays another fleet's HPA read or pods. The thread lives until the fleet is closed
(a child is tied to the thread that spawned it, see `harness.child`).

Every start, readiness, termination and exit is recorded with the pod's pid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

from demo.series import FleetName, PodLife
from harness import HOST, Child, RatingApi, StartError, wait_http_ok_async
from harness.group import Group

PRE_STOP_S = 5.0  # the Deployment's preStop sleep
GRACE_S = 30.0  # its terminationGracePeriodSeconds
READY_TIMEOUT_S = 60.0
RECONCILE_EVERY_S = 0.1

EventKind = Literal["start", "ready", "terminate", "exit", "failed"]
Clock = Callable[[], float]


@dataclass(frozen=True)
class FleetEvent:
    t_s: float
    fleet: FleetName
    pod: str
    pid: int
    kind: EventKind
    detail: str = ""


@dataclass
class Pod:
    name: str
    child: Child
    started_s: float
    ready_s: float | None = None
    terminating_s: float | None = None
    exited_s: float | None = None

    @property
    def public_address(self) -> str:
        return f"{HOST}:{self.child.ports['public']}"

    @property
    def admin_address(self) -> str:
        return f"{HOST}:{self.child.ports['admin']}"

    @property
    def alive(self) -> bool:
        return self.exited_s is None

    @property
    def active(self) -> bool:
        """Counted by the Deployment's status: alive and not terminating."""
        return self.exited_s is None and self.terminating_s is None

    @property
    def serving(self) -> bool:
        return self.active and self.ready_s is not None

    def life(self, origin_s: float) -> PodLife:
        def since(t_s: float | None) -> float | None:
            return None if t_s is None else t_s - origin_s

        ends = [t for t in (self.terminating_s, self.exited_s) if t is not None]
        unready_s = min(ends, default=None)
        return PodLife(self.name, self.child.pid, self.started_s - origin_s, since(self.ready_s),
                       since(unready_s), since(self.exited_s))  # fmt: skip


class Fleet:
    """One Deployment of rating pods; `on_change` hears of every change to its pods."""

    def __init__(
        self,
        name: FleetName,
        children: Group,
        *,
        clock: Clock,
        bucket_rate: float,
        bucket_capacity: float,
        on_change: Callable[[Fleet], None] = lambda fleet: None,
        pre_stop_s: float = PRE_STOP_S,
    ) -> None:
        self.name = name
        self.spec_replicas = 0
        self.pods: list[Pod] = []
        self.events: list[FleetEvent] = []
        self._children = children
        self._clock = clock
        self._bucket = (bucket_rate, bucket_capacity)
        self._on_change = on_change
        self._pre_stop_s = pre_stop_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = 0
        self._starting = 0  # asked for, not yet spawned
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-pods")

    def serving(self) -> list[Pod]:
        return [pod for pod in self.pods if pod.serving]

    def active_count(self) -> int:
        return sum(pod.active for pod in self.pods)

    def alive(self) -> list[Pod]:
        return [pod for pod in self.pods if pod.alive]

    def scale(self, replicas: int) -> None:
        """Set the Deployment's spec; pods are started or removed at once."""
        self.spec_replicas = replicas
        self.reconcile()

    def reconcile(self) -> None:
        """Notice pods that exited, then start or remove pods to match the spec."""
        for pod in self.pods:
            if pod.alive and not pod.child.running:
                self._exited(pod, f"exit code {pod.child.returncode}")
        active = [pod for pod in self.pods if pod.active]
        for _ in range(self.spec_replicas - len(active) - self._starting):
            self._start_pod()
        for pod in sorted(active, key=removal_order)[: max(0, len(active) - self.spec_replicas)]:
            self._remove(pod)

    async def run(self) -> None:
        """Reconcile until cancelled, as the ReplicaSet controller does."""
        while True:
            self.reconcile()
            await asyncio.sleep(RECONCILE_EVERY_S)

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until as many pods serve as the spec asks for."""
        async with asyncio.timeout(timeout_s):
            while len(self.serving()) < self.spec_replicas:
                self.reconcile()
                await asyncio.sleep(RECONCILE_EVERY_S)

    def _start_pod(self) -> None:
        name = f"{self.name}-{self._started}"
        self._started += 1
        self._starting += 1
        self._spawn_task(self._start(name))

    async def _start(self, name: str) -> None:
        """Spawn on the fleet's thread, then follow the pod until it is ready."""
        rate, capacity = self._bucket
        service = RatingApi(
            pod_name=name, bucket_rate=rate, bucket_capacity=capacity, log_level="warning"
        )
        spawn = self._children.spawn
        loop = asyncio.get_running_loop()
        try:
            child = await loop.run_in_executor(
                self._spawner, spawn, name, service.argv(), service.ports
            )
        finally:
            self._starting -= 1
        pod = Pod(name, child, self._clock())
        self.pods.append(pod)
        self._record(pod, "start")
        await self._until_ready(pod, service.ready_urls[0])

    async def _until_ready(self, pod: Pod, url: str) -> None:
        try:
            await wait_http_ok_async(url, pod.child, timeout_s=READY_TIMEOUT_S)
        except StartError as exc:
            self._record(pod, "failed", exc.reason)
            pod.child.kill()
            if pod.alive:
                self._exited(pod, exc.reason)
            return
        if pod.active:
            pod.ready_s = self._clock()
            self._record(pod, "ready")

    def _remove(self, pod: Pod) -> None:
        pod.terminating_s = self._clock()
        self._record(pod, "terminate")
        self._spawn_task(self._terminate(pod))

    async def _terminate(self, pod: Pod) -> None:
        await asyncio.sleep(self._pre_stop_s)
        code = await pod.child.stop_async(GRACE_S)
        if pod.alive:
            self._exited(pod, f"exit code {code}")

    def _exited(self, pod: Pod, detail: str) -> None:
        pod.exited_s = self._clock()
        self._record(pod, "exit", detail)

    def _record(self, pod: Pod, kind: EventKind, detail: str = "") -> None:
        self.events.append(
            FleetEvent(self._clock(), self.name, pod.name, pod.child.pid, kind, detail)
        )
        self._on_change(self)

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop every pod at once (SIGTERM, SIGKILL after the grace) and every task."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        alive = self.alive()
        stops = (pod.child.stop_async(GRACE_S) for pod in alive)
        codes = await asyncio.gather(*stops, return_exceptions=True)
        for pod, code in zip(alive, codes, strict=True):
            self._exited(pod, f"stopped at the end: {code}")
        self._spawner.shutdown(wait=False, cancel_futures=True)

    def lives(self, origin_s: float = 0.0) -> list[PodLife]:
        """Every pod's life, its times counted from `origin_s` on the fleet's clock."""
        return [pod.life(origin_s) for pod in self.pods]

    def events_since(self, origin_s: float) -> list[FleetEvent]:
        return [replace(event, t_s=event.t_s - origin_s) for event in self.events]


def removal_order(pod: Pod) -> tuple[bool, float, float]:
    """The ReplicaSet's order: not ready first, then ready for the shortest time, then
    the newest."""
    ready = pod.ready_s is not None
    return (ready, -(pod.ready_s or 0.0), -pod.started_s)

"""The fault schedule: one pod at a time is killed, restarted, frozen or slowed.

- kill: SIGKILL, down for a while, then started again on the same ports (new boot_id);
- restart: SIGTERM (the pod drains and exits), then started again at once;
- freeze: SIGSTOP for a while, then SIGCONT;
- slow: short SIGSTOP/SIGCONT pulses for a while: the pod answers, late and unevenly.

Faults come in rounds of one of each kind, in an order the RNG chooses, so that even a
short run sees every kind. The seeded RNG chooses every fault, pod and duration, so a
seed gives the same schedule.
Between faults there is a pause longer than the recovery bound, so that each fault's
recovery can be judged on its own. A pod "returns" when its `/readyz` answers again
(kill, restart) or when it gets its last SIGCONT (freeze, slow).
"""

from __future__ import annotations

import asyncio
import random
import signal
from dataclasses import dataclass
from typing import Literal

from soak.settings import Settings
from soak.under_test import Clock, Cluster, Pod, pause

FaultKind = Literal["kill", "restart", "freeze", "slow"]
KINDS: tuple[FaultKind, ...] = ("kill", "restart", "freeze", "slow")
START_ALLOWANCE_S = 2.0  # a restart's start-up, on top of the fault's own duration


@dataclass(slots=True)
class Fault:
    kind: FaultKind
    pod: int
    duration_s: float
    started: float
    returned: float | None = None


class Chaos:
    def __init__(self, cluster: Cluster, settings: Settings, clock: Clock) -> None:
        self.faults: list[Fault] = []
        self._cluster = cluster
        self._settings = settings
        self._clock = clock
        self._rng = random.Random(settings.seed)

    @property
    def starts_at(self) -> float:
        return self._settings.chaos_start_s

    async def run(self, until: float) -> None:
        """Faults from `chaos_start_s` on; the last one returns at least `settle_s` before
        `until`."""
        s = self._settings
        await asyncio.sleep(max(0.0, s.chaos_start_s - self._clock()))
        last_start = until - s.settle_s - s.fault_s[1] - START_ALLOWANCE_S
        kinds: list[FaultKind] = []
        while self._clock() < last_start:
            kinds = kinds or self._rng.sample(KINDS, len(KINDS))
            kind = kinds.pop()
            pod = self._cluster.pods[self._rng.randrange(len(self._cluster.pods))]
            fault = Fault(kind, pod.index, self._rng.uniform(*s.fault_s), self._clock())
            self.faults.append(fault)
            try:
                fault.returned = await self._inflict(fault, pod)
            finally:
                pod.child.signal(signal.SIGCONT)  # never leave a pod frozen
            await pause(self._rng.uniform(*s.gap_s), self._clock, until)

    async def _inflict(self, fault: Fault, pod: Pod) -> float:
        timeline = self._cluster.timeline
        if fault.kind == "kill":
            pod.kill(timeline)
            await pod.child.wait_async(5.0)
            await asyncio.sleep(fault.duration_s)
            return await pod.start(timeline)
        if fault.kind == "restart":
            await pod.terminate(timeline)
            return await pod.start(timeline)
        if fault.kind == "freeze":
            pod.freeze(timeline)
            await asyncio.sleep(fault.duration_s)
            return pod.thaw(timeline)
        return await self._slow(fault, pod)

    async def _slow(self, fault: Fault, pod: Pod) -> float:
        timeline = self._cluster.timeline
        end = self._clock() + fault.duration_s
        returned = self._clock()
        while self._clock() < end:
            pod.freeze(timeline)
            await asyncio.sleep(self._rng.uniform(0.1, 0.4))
            returned = pod.thaw(timeline)
            await asyncio.sleep(self._rng.uniform(0.05, 0.2))
        return returned

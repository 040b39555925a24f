"""The closed loop of one fleet: KEDA's polling, the HPA's syncs, the fleet following.

Every `sync_s` (15 s, as kube-controller-manager's `--horizontal-pod-autoscaler-sync-period`)
the HPA reads the metric through KEDA and sets the Deployment's replica count; the next
sync comes `sync_s` after this one ended, as the controller requeues an HPA. Every
`polling_s` (the ScaledObject's `pollingInterval`, 5 s) KEDA's operator reads the
trigger too, for activation. A failed read leaves the replica count as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from demo.fleet import Fleet
from demo.series import FleetName, FleetState
from harness.hpa import Autoscaler, Decision
from harness.keda_client import Reading

Clock = Callable[[], float]


@dataclass
class Control:
    name: FleetName
    fleet: Fleet
    hpa: Autoscaler
    read: Callable[[], Awaitable[Reading]]
    read_forecast: Callable[[], Awaitable[float | None]] | None = None  # for the chart
    decisions: list[Decision] = field(default_factory=list)
    failed_reads: list[tuple[float, str]] = field(default_factory=list)
    sync_times: list[float] = field(default_factory=list)  # when each sync began
    last_value: float | None = None
    active: bool | None = None
    last_forecast: float | None = None

    async def syncs(self, clock: Clock, *, first_at_s: float, sync_s: float) -> None:
        """The HPA, until cancelled."""
        next_at_s = first_at_s
        while True:
            await asyncio.sleep(max(0.0, next_at_s - clock()))
            self.sync_times.append(clock())
            reading = await self._read(clock)
            if reading.value is not None:
                decision = self.hpa.sync(
                    clock(),
                    value=reading.value,
                    spec_replicas=self.fleet.spec_replicas,
                    pods=self.fleet.active_count(),
                )
                self.decisions.append(decision)
                if decision.desired != self.fleet.spec_replicas:
                    self.fleet.scale(decision.desired)
            next_at_s = clock() + sync_s

    async def polls(self, clock: Clock, *, polling_s: float) -> None:
        """KEDA's operator, until cancelled."""
        while True:
            await self._read(clock)
            await asyncio.sleep(polling_s)

    async def _read(self, clock: Clock) -> Reading:
        reading = await self.read()
        if reading.error is not None:
            self.failed_reads.append((clock(), reading.error))
        if reading.value is not None:
            self.last_value = reading.value
        if reading.active is not None:
            self.active = reading.active
        if self.read_forecast is not None:
            self.last_forecast = await self.read_forecast()
        return reading

    def state(self) -> FleetState:
        return FleetState(
            metric=self.last_value,
            desired=self.fleet.spec_replicas,
            running=len(self.fleet.alive()),
            ready=len(self.fleet.serving()),
            active=self.active,
            forecast=self.last_forecast,
        )


async def sample_states(
    clock: Clock, controls: list[Control], seconds: int, states: list[dict[FleetName, FleetState]]
) -> None:
    """At the end of each second of the run, every fleet's state."""
    for second in range(seconds):
        await asyncio.sleep(max(0.0, second + 1 - clock()))
        states.append({control.name: control.state() for control in controls})

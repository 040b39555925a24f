"""The demo from start to end: start everything, run the scenario, stop, report.

Three fleets of rating pods get the same load, one scaled by the direct path (the
rating-scaler over gRPC), one by the Prometheus path (a real Prometheus), and the
floor, whose metric is the load offered at that instant (the load generator's plan):
what no HPA-fed metric can beat. Each has its own emulated HPA with the same target per
pod and behavior.

The `agents` scenario runs other fleets: the direct path as above (its 300 s scale-down
window keeps a burst's pods through the gaps), `floor-short` (the load offered, with a
30 s window that gives them back) and `forecast` (the direct path with `forecast:
recurring` and the same short window).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal, TextIO

import grpc

from demo import scenarios
from demo.fleet import Fleet
from demo.live import LiveView
from demo.load_control import LoadGenerator
from demo.loop import Control, sample_states
from demo.outputs import write_outputs
from demo.prometheus import Prometheus, start_prometheus
from demo.series import FleetName, FleetState, Row, Summary, fleets_for, make_row, summarize
from demo.triggers import DirectTrigger, ForecastReader, OfferedTrigger, PrometheusTrigger
from harness import RatingScaler, wait_http_ok_async
from harness.group import Group
from harness.hpa import (
    DEFAULT_BEHAVIOR,
    Autoscaler,
    Behavior,
    HpaSpec,
    Policy,
    Rules,
)
from harness.keda_client import Reading
from harness.scaledobject import SCALED_OBJECT_BEHAVIOR

TARGET_UTILIZATION = 0.8  # the ScaledObject's targetUtilization
LEAD_S = 1.0  # from starting the load generator to its first request
SPEC_TIMEOUT_S = 15.0
BehaviorName = Literal["scaledobject", "defaults"]
SHORT_WINDOW_S = 30.0  # floor-short's scale-down window, and the forecast fleet's in agents
SHORT_DOWN_POLICY = Policy("Percent", 100, 15.0)
FORECAST_SCALED_OBJECT = "rating-api-forecast"
ENDPOINTS_EVERY_S = 0.2  # how often the ready pods are compared with the last list sent


@dataclass(frozen=True)
class Settings:
    scenario: scenarios.ScenarioName = "step"
    seed: int = 1
    duration_s: int = 150
    pods: int = 3
    bucket_rate: float = 10.0
    step: float = 4.1  # the step, times the starting pods' refill
    quiet_per_s: int = 12  # the bursts' quiet load
    sync_s: float = 15.0
    polling_s: float = 5.0
    scrape_interval_s: float = 15.0
    behavior: BehaviorName = "scaledobject"
    scale_down_window_s: float | None = None  # None: the behavior's own
    first_sync_s: float | None = None  # None: half a sync after the first rise
    phase: float | None = None  # or: the first rise lands this share of a sync after a sync
    random_phase: bool = False  # or: draw the first sync from the seed
    min_replicas: int = 1
    max_replicas: int = 20
    poll_interval_s: float = 1.0  # the scaler's
    prometheus_binary: str = "prometheus"
    out_dir: Path = Path("out/demo")
    fleets: tuple[FleetName, ...] | None = None  # None: the scenario's own
    forecast_lead_s: float = 30.0  # the forecast fleet's forecastLead

    def fleet_names(self) -> tuple[FleetName, ...]:
        return self.fleets or fleets_for(self.scenario)

    @property
    def needs_prometheus(self) -> bool:
        return "prometheus" in self.fleet_names()

    def build_scenario(self) -> scenarios.Scenario:
        base = (
            round(self.step * self.pods * self.bucket_rate)
            if self.scenario == "step"
            else self.quiet_per_s
        )
        return scenarios.build(
            self.scenario, duration_s=self.duration_s, base_per_s=base, seed=self.seed
        )

    def first_sync(self, scenario: scenarios.Scenario) -> float:
        if self.first_sync_s is not None:
            return self.first_sync_s
        if self.phase is not None:
            return scenarios.first_sync_at_phase(scenario, self.sync_s, self.phase)
        seed = self.seed if self.random_phase else None
        return scenarios.first_sync_s(scenario, self.sync_s, drawn_from=seed)

    def hpa_behavior(self) -> Behavior:
        behavior = SCALED_OBJECT_BEHAVIOR if self.behavior == "scaledobject" else DEFAULT_BEHAVIOR
        if self.scale_down_window_s is not None:
            behavior = behavior.with_scale_down_window(self.scale_down_window_s)
        return behavior

    def short_behavior(self) -> Behavior:
        """The behavior with a short scale-down: a 30 s window, then 100 % per 15 s."""
        base = self.hpa_behavior()
        down = Rules(SHORT_WINDOW_S, (SHORT_DOWN_POLICY,), "Max", base.scale_down.tolerance)
        name = f"{base.name.split(',')[0]}, short scale-down"
        return replace(base, name=name, scale_down=down)

    def short_fleets(self) -> tuple[FleetName, ...]:
        """The fleets on the short window: floor-short, and the forecast in agents (on
        other loads it has the direct path's behavior, to be compared with it)."""
        short: tuple[FleetName, ...] = ("floor-short", "forecast")
        if self.scenario != "agents":
            short = ("floor-short",)
        return tuple(name for name in self.fleet_names() if name in short)

    def behavior_for(self, fleet: FleetName) -> Behavior:
        return self.short_behavior() if fleet in self.short_fleets() else self.hpa_behavior()


@dataclass
class Stage:
    """Everything started, before the load."""

    children: Group
    fleets: dict[FleetName, Fleet]
    direct: dict[FleetName, DirectTrigger]  # the fleets fed by the rating-scaler
    prometheus: Prometheus | None
    prometheus_trigger: PrometheusTrigger | None
    load: LoadGenerator
    t0: float  # monotonic time of the load's second 0
    forecast: ForecastReader | None = None

    def clock(self) -> float:
        return time.monotonic() - self.t0


async def run(settings: Settings, out: TextIO) -> Summary:
    """Run the whole demo; every process it starts is stopped before this returns."""
    scenario = settings.build_scenario()
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    children = Group(settings.out_dir / "logs")
    try:
        with tempfile.TemporaryDirectory(prefix="openclaw-demo-") as work:
            async with staged(settings, children, Path(work), out) as stage:
                target = await target_per_pod(stage)
                behavior = settings.hpa_behavior()
                spec = HpaSpec(target, settings.min_replicas, settings.max_replicas, behavior)
                stage.t0 = time.monotonic() + LEAD_S
                controls = make_controls(stage, spec, settings)
                rows = await drive(settings, scenario, stage, controls, spec, out)
                say(out, "\nThe load is over; stopping everything.")
    finally:
        children.stop_all()
    say(out, f"Stopped all {len(children.started)} processes it started.")
    fleets = stage.fleets.values()
    lives = {fleet.name: fleet.lives(origin_s=stage.t0) for fleet in fleets}
    first_sync_s = settings.first_sync(scenario)
    syncs: dict[str, list[float]] = {control.name: control.sync_times for control in controls}
    summary = summarize(rows, scenario, lives, spec=spec, sync_s=settings.sync_s,
                        first_sync_s=first_sync_s, syncs_s=syncs)  # fmt: skip
    events = [event for fleet in fleets for event in fleet.events_since(stage.t0)]
    short_fleets = settings.short_fleets()
    short = (short_fleets, settings.short_behavior()) if short_fleets else None
    lines = write_outputs(settings.out_dir, rows, summary, spec, events, short)
    say(out, "\n" + "\n".join(lines))
    for control in controls:
        if control.failed_reads:
            at_s, error = control.failed_reads[-1]
            say(out, f"({control.name}: {len(control.failed_reads)} failed reads, the last at "
                     f"t={at_s:.0f} s: {error})")  # fmt: skip
    outputs = "demo.csv, events.csv, demo.png, summary.txt, summary.json, logs/"
    say(out, f"\nOutputs in {settings.out_dir}/: {outputs}")
    return summary


@asynccontextmanager
async def staged(
    settings: Settings, children: Group, work_dir: Path, out: TextIO
) -> AsyncIterator[Stage]:
    """The scaler, Prometheus and every fleet at its starting size, all ready."""
    async with AsyncExitStack() as stack:
        names = settings.fleet_names()
        pods = f"{len(names)} x {settings.pods} rating pods"
        also = ", Prometheus" if settings.needs_prometheus else ""
        say(out, f"Starting the rating-scaler{also} and {pods} on 127.0.0.1")
        scaler = RatingScaler(
            poll_interval_s=settings.poll_interval_s, pod_timeout_s=0.25, log_level="warning"
        )
        scaler_child = children.spawn("rating-scaler", scaler.argv(), scaler.ports)
        prometheus = None
        if settings.needs_prometheus:
            prometheus = await start_prometheus(
                children,
                settings.prometheus_binary,
                work_dir=work_dir,
                scrape_interval_s=settings.scrape_interval_s,
            )
        await wait_http_ok_async(scaler.ready_urls[0], scaler_child)
        load = LoadGenerator(children, work_dir, names)
        direct = direct_triggers(scaler.grpc_target, names, settings.forecast_lead_s)
        query = None if prometheus is None else PrometheusTrigger(prometheus.url)
        stage = Stage(children, {}, direct, prometheus, query, load, t0=time.monotonic())
        for trigger in direct.values():
            stack.push_async_callback(trigger.close)
        if query is not None:
            stack.push_async_callback(query.close)
        if "forecast" in names:
            http_url = f"http://127.0.0.1:{scaler.http_port}"
            stage.forecast = ForecastReader(http_url, FORECAST_SCALED_OBJECT)
            stack.push_async_callback(stage.forecast.close)
        for name in names:
            rate = settings.bucket_rate
            fleet = Fleet(name, children, clock=time.monotonic, bucket_rate=rate,
                          bucket_capacity=2 * rate, on_change=publisher(stage))  # fmt: skip
            stage.fleets[name] = fleet
            stack.push_async_callback(fleet.close)
            fleet.scale(settings.pods)
        await asyncio.gather(*(fleet.wait_ready() for fleet in stage.fleets.values()))
        poll, scrape = settings.poll_interval_s, settings.scrape_interval_s
        say(out, f"  rating-scaler    gRPC {scaler.grpc_target}, polls the pods every {poll:g} s")
        if prometheus is not None:
            say(out, f"  Prometheus       {prometheus.url}, scrapes its fleet every {scrape:g} s")
        for fleet in stage.fleets.values():
            pods = ", ".join(f"{pod.name} (pid {pod.child.pid})" for pod in fleet.serving())
            say(out, f"  {fleet.name + ' fleet':<16} {pods}")
        yield stage


def direct_triggers(
    grpc_target: str, names: tuple[FleetName, ...], lead_s: float
) -> dict[FleetName, DirectTrigger]:
    """The triggers of the fleets the rating-scaler feeds, one ScaledObject each."""
    triggers: dict[FleetName, DirectTrigger] = {}
    if "direct" in names:
        triggers["direct"] = DirectTrigger(grpc_target)
    if "forecast" in names:
        metadata = {"forecast": "recurring", "forecastLead": f"{lead_s:g}"}
        triggers["forecast"] = DirectTrigger(
            grpc_target, name=FORECAST_SCALED_OBJECT, metadata=metadata
        )
    return triggers


def publisher(stage: Stage) -> Callable[[Fleet], None]:
    def publish(fleet: Fleet) -> None:
        stage.load.publish(fleet.name, [pod.public_address for pod in fleet.serving()])
        if fleet.name == "prometheus" and stage.prometheus is not None:
            stage.prometheus.set_targets([pod.admin_address for pod in fleet.alive()])

    return publish


async def target_per_pod(stage: Stage) -> float:
    """The target KEDA writes into the HPA, from the scaler's GetMetricSpec."""
    deadline = time.monotonic() + SPEC_TIMEOUT_S
    name, trigger = next(iter(stage.direct.items()))
    while True:
        try:
            return await trigger.target_per_pod(admin_addresses(stage.fleets[name]))
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def admin_addresses(fleet: Fleet) -> list[str]:
    return sorted(pod.admin_address for pod in fleet.serving())


async def follow_endpoints(ready: Callable[[], list[str]], trigger: DirectTrigger) -> None:
    """Until cancelled: tell the scaler of each change of a fleet's `ready` pods at once
    (one GetMetricSpec with the new `endpoints`), as a cluster's `endpointSlices`
    discovery sees a pod join or leave within a second. Without it the scaler would
    learn of the new list only at KEDA's next read, up to a polling interval later,
    and meanwhile poll pods that no longer get all the load."""
    known = ready()
    while True:
        await asyncio.sleep(ENDPOINTS_EVERY_S)
        current = ready()
        if current != known and current:
            with contextlib.suppress(grpc.aio.AioRpcError, TimeoutError, ValueError):
                await trigger.target_per_pod(current)
                known = current  # a failed call is tried again


def make_controls(stage: Stage, spec: HpaSpec, settings: Settings) -> list[Control]:
    """One loop per fleet: its trigger, and its HPA (the short window's, or `spec`'s)."""
    offered = OfferedTrigger(lambda: stage.load.offered_per_s(stage.clock()))
    now = stage.clock()
    controls = []
    for name in settings.fleet_names():
        fleet_spec = replace(spec, behavior=settings.behavior_for(name))
        control = Control(
            name,
            stage.fleets[name],
            Autoscaler.seeded(fleet_spec, now_s=now, replicas=settings.pods),
            reader(stage, name, offered),
        )
        if name == "forecast" and stage.forecast is not None:
            control.read_forecast = stage.forecast.read
        controls.append(control)
    return controls


def reader(
    stage: Stage, name: FleetName, offered: OfferedTrigger
) -> Callable[[], Awaitable[Reading]]:
    """What the fleet's HPA reads through KEDA."""
    trigger = stage.direct.get(name)
    if trigger is not None:

        async def read_scaler() -> Reading:
            return await trigger.read(admin_addresses(stage.fleets[name]))

        return read_scaler
    if name == "prometheus" and stage.prometheus_trigger is not None:
        return stage.prometheus_trigger.read
    return offered.read


async def drive(
    settings: Settings,
    scenario: scenarios.Scenario,
    stage: Stage,
    controls: list[Control],
    spec: HpaSpec,
    out: TextIO,
) -> list[Row]:
    """Run the scenario's load through every fleet's loop; one row a second."""
    say(out, f"\nThe load: {scenario.describe()}.")
    stage.load.start(scenario.planned(), stage.t0)
    phase_s = settings.first_sync(scenario)
    say(out, f"The HPAs sync every {settings.sync_s:g} s, the first at t={phase_s:.1f} s; "
             f"KEDA polls every {settings.polling_s:g} s.\n")  # fmt: skip
    states: list[dict[FleetName, FleetState]] = []
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(fleet.run()) for fleet in stage.fleets.values()]
    for control in controls:
        tasks.append(loop.create_task(
            control.syncs(stage.clock, first_at_s=phase_s, sync_s=settings.sync_s)))  # fmt: skip
        tasks.append(loop.create_task(control.polls(stage.clock, polling_s=settings.polling_s)))
    for name, trigger in stage.direct.items():
        ready = partial(admin_addresses, stage.fleets[name])
        tasks.append(loop.create_task(follow_endpoints(ready, trigger)))
    sampler = loop.create_task(sample_states(stage.clock, controls, scenario.duration_s, states))
    try:
        rows = await follow_load(stage, scenario, spec, states, [*tasks, sampler], out)
    finally:
        for task in [*tasks, sampler]:
            task.cancel()
        await asyncio.gather(*tasks, sampler, return_exceptions=True)
    return rows


async def follow_load(
    stage: Stage,
    scenario: scenarios.Scenario,
    spec: HpaSpec,
    states: list[dict[FleetName, FleetState]],
    tasks: list[asyncio.Task[None]],
    out: TextIO,
) -> list[Row]:
    """Until the load generator is done and every second is in: check the generator
    and the loops, and show each complete second."""
    view = LiveView(
        out, redraw=out.isatty(), duration_s=scenario.duration_s, fleets=tuple(stage.fleets)
    )
    rows: list[Row] = []
    while len(rows) < scenario.duration_s or not stage.load.done:
        await asyncio.sleep(0.2)
        stage.load.poll()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"a control loop failed: {task.exception()!r}")
        while len(rows) < len(states) and (lines := stage.load.seconds(len(rows))):
            row = make_row(scenario, len(rows), states[len(rows)], lines,
                           target_per_pod=spec.target_per_pod, min_replicas=spec.min_replicas,
                           max_replicas=spec.max_replicas)  # fmt: skip
            rows.append(row)
            view.show(row)
    return rows


def say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()

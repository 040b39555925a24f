"""`python -m demo --scenario zero`: one fleet at zero behind a real rating-activator.

What runs, all on 127.0.0.1: a real `rating-scaler`; a real `rating-activator` whose
ready pods come from an endpoints file the demo keeps on the fleet's serving pods (as
the EndpointSlice controller does); one fleet (`demo.fleet`) starting at 0 pods; and
KEDA's side:
- `external-push`: a StreamIsActive stream on the activator-only trigger; a `true`
  while the fleet is at 0 scales it to 1 at once;
- every `pollingInterval`, IsActive on the whole trigger; inactive for
  `cooldownPeriod` (short here) scales it to 0;
- from 1 replica, the HPA's sync every 15 s (the ScaledObject's behavior, 1 to 20).

The load follows the public Service's EndpointSlice as kube-proxy does: to the
activator while no pod serves, to the serving pods in turn once one does. Phases: idle
at zero; one request (the first wake-up); 1 request/s while the pod serves; idle until
the fleet is back at 0; a burst from zero (the second wake-up); idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from demo.fleet import Fleet
from harness import RatingActivator, RatingScaler, start_async
from harness.group import Group
from harness.hpa import Autoscaler, HpaSpec
from harness.keda_client import KedaClient
from harness.scaledobject import SCALED_OBJECT_BEHAVIOR
from scaler._proto import externalscaler_pb2 as pb

BATCH = {"items": [{"id": "agent-42", "up": 42, "down": 7}]}
REQUEST_TIMEOUT_S = 45.0
READY_FOR_S = 2.0  # a pod ready this long: the public slice has long left the activator


@dataclass(frozen=True)
class ZeroSettings:
    bucket_rate: float = 10.0
    target_per_pod: float = 8.0  # bucket_rate x 0.8, as the overlay computes it
    burst_per_s: int = 100
    burst_s: int = 10
    idle_s: float = 10.0
    steady_s: int = 10
    cooldown_s: float = 20.0  # the ScaledObject's cooldownPeriod, short for the demo
    polling_s: float = 5.0
    sync_s: float = 15.0
    hold_timeout_s: float = 30.0
    out_dir: Path = Path("out/demo-zero")


@dataclass
class Sent:
    t_s: float
    to: str  # "activator" or "pod"
    status: int | None = None  # None: no answer
    answered_s: float | None = None
    error: str | None = None


@dataclass
class Wakeup:
    """One wake-up from zero: what its requests met."""

    name: str
    started_s: float
    first_answer_s: float | None = None  # the first request's wait for its 200
    pod_ready_s: float | None = None  # the first pod's spawn to ready
    held: int = 0
    forwarded: int = 0
    timed_out: int = 0
    lost: int = 0
    sent: int = 0
    answered_200: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Run:
    settings: ZeroSettings
    fleet: Fleet
    activator: RatingActivator
    keda: KedaClient
    endpoints_file: Path
    t0: float = field(default_factory=time.monotonic)
    sent: list[Sent] = field(default_factory=list)
    scale_events: list[tuple[float, int, str]] = field(default_factory=list)
    last_active_s: float = 0.0
    hpa: Autoscaler | None = None
    in_flight: set[asyncio.Future[None]] = field(default_factory=set)
    scaled_to_zero: asyncio.Event = field(default_factory=asyncio.Event)
    _next: int = 0

    def clock(self) -> float:
        return time.monotonic() - self.t0

    def scale(self, replicas: int, why: str) -> None:
        if replicas != self.fleet.spec_replicas:
            self.scale_events.append((self.clock(), replicas, why))
            self.fleet.scale(replicas)
            if replicas == 0:
                self.scaled_to_zero.set()
            else:
                self.scaled_to_zero.clear()

    def target(self) -> tuple[str, str]:
        """Where kube-proxy sends a request now: ("pod", url) or ("activator", url)."""
        serving = self.fleet.serving()
        if not serving:
            return "activator", self.activator.public_url
        pod = serving[self._next % len(serving)]
        self._next += 1
        return "pod", f"http://{pod.public_address}"

    def ref(self, *, pods: bool) -> pb.ScaledObjectRef:
        keys = {
            "scalerAddress": "rating-scaler:6000",
            "activatorEndpoints": self.activator.admin_address,
            "targetPerPod": f"{self.settings.target_per_pod:g}",
        }
        serving = [pod.admin_address for pod in self.fleet.serving()]
        if pods and serving:
            keys["endpoints"] = ",".join(serving)
        return pb.ScaledObjectRef(name="rating-api", namespace="demo", scalerMetadata=keys)


def write_endpoints(path: Path, fleet: Fleet) -> None:
    """The serving pods' public ports, as the activator reads them (write, then rename)."""
    staged = path.with_suffix(".new")
    staged.write_text("".join(f"{pod.public_address}\n" for pod in fleet.serving()))
    staged.replace(path)


async def run_zero(settings: ZeroSettings, out: TextIO) -> dict[str, Any]:
    """The whole scenario; every process it starts is stopped before this returns."""
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    children = Group(settings.out_dir / "logs")
    endpoints_file = settings.out_dir / "endpoints"
    endpoints_file.write_text("")
    fleet = Fleet(
        "direct",
        children,
        clock=time.monotonic,
        bucket_rate=settings.bucket_rate,
        bucket_capacity=2 * settings.bucket_rate,
        on_change=lambda changed: write_endpoints(endpoints_file, changed),
    )
    try:
        scaler = RatingScaler(poll_interval_s=1.0, log_level="warning")
        await start_async(scaler, settings.out_dir / "logs" / "rating-scaler.log")
        activator = RatingActivator(
            endpoints_file=endpoints_file, hold_timeout_s=settings.hold_timeout_s
        )
        await start_async(activator, settings.out_dir / "logs" / "rating-activator.log")
        async with KedaClient.insecure(scaler.grpc_target) as keda:
            run = Run(settings, fleet, activator, keda, endpoints_file)
            return await _scenario(run, out)
    finally:
        await fleet.close()
        children.stop_all()


async def _scenario(run: Run, out: TextIO) -> dict[str, Any]:
    settings = run.settings
    keda_side = [
        asyncio.create_task(run.fleet.run()),
        asyncio.create_task(_push(run)),
        asyncio.create_task(_polling(run)),
        asyncio.create_task(_hpa(run)),
    ]
    wakeups: list[Wakeup] = []
    async with aiohttp.ClientSession() as session:
        try:
            await asyncio.sleep(settings.idle_s)
            _say(out, run, "at zero: one request")
            wakeups.append(await _wake(run, session, "first request", per_s=1, seconds=1))
            _say(out, run, f"steady: 1 request/s for {settings.steady_s} s")
            through = await _steady(run, session)
            _say(out, run, "idle until the fleet is back at 0")
            await _until_zero(run)
            _say(out, run, f"at zero again: a burst of {settings.burst_per_s}/s")
            burst = await _wake(
                run, session, "burst", per_s=settings.burst_per_s, seconds=settings.burst_s
            )
            wakeups.append(burst)
            _say(out, run, "idle until KEDA sets 0, then 1 request/s while the pods leave")
            leaving = await _scale_to_zero_under_load(run, session)
        finally:
            for task in keda_side:
                task.cancel()
            await asyncio.gather(*keda_side, return_exceptions=True)
    summary = {
        "zero": {
            "wakeups": [_wakeup_json(wakeup) for wakeup in wakeups],
            "through_activator_when_ready": int(through),
            "scale_to_zero": leaving,
        },
        "scale_events": [{"t_s": t, "replicas": n, "why": why} for t, n, why in run.scale_events],
    }
    (settings.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for line in _summary_lines(wakeups, int(through), leaving):
        _say(out, run, line)
    return summary


async def _wake(
    run: Run, session: aiohttp.ClientSession, name: str, *, per_s: int, seconds: int
) -> Wakeup:
    """Load at zero, measured: the activator's counters before and after, the first
    request's wait, and the first pod's start."""
    assert run.fleet.spec_replicas == 0 and not run.fleet.alive(), "not at zero"
    before = {key: await _counter(run, session, key) for key in _COUNTERS}
    started, pods_before = run.clock(), len(run.fleet.pods)
    first = len(run.sent)
    await _load(run, session, per_s=per_s, seconds=seconds)
    await _until_settled(run)
    after = {key: await _counter(run, session, key) for key in _COUNTERS}
    mine = run.sent[first:]
    wakeup = Wakeup(name, started, sent=len(mine))
    wakeup.held, wakeup.forwarded, wakeup.timed_out = (
        int(after[key] - before[key]) for key in _COUNTERS
    )
    wakeup.lost = sum(sent.status is None for sent in mine)
    wakeup.errors = sorted({sent.error for sent in mine if sent.error})[:5]
    wakeup.answered_200 = sum(sent.status == 200 for sent in mine)
    if mine and mine[0].answered_s is not None and mine[0].status == 200:
        wakeup.first_answer_s = mine[0].answered_s - mine[0].t_s
    new_pods = run.fleet.pods[pods_before:]
    if new_pods and new_pods[0].ready_s is not None:
        wakeup.pod_ready_s = new_pods[0].ready_s - new_pods[0].started_s
    return wakeup


_COUNTERS = ("held_total", 'forwarded_total{held="true"}', "timed_out_total")


async def _steady(run: Run, session: aiohttp.ClientSession) -> float:
    """1 request/s once a pod has been ready for `READY_FOR_S`: how many of them the
    activator saw, by its own counter (the public slice has left it: none)."""
    await asyncio.sleep(READY_FOR_S)
    name = 'forwarded_total{held="false"}'
    before = await _counter(run, session, name)
    await _load(run, session, per_s=1, seconds=run.settings.steady_s)
    await _until_settled(run)
    return await _counter(run, session, name) - before


async def _load(run: Run, session: aiohttp.ClientSession, *, per_s: int, seconds: int) -> None:
    """`per_s` requests a second, evenly spaced, each to where kube-proxy would send it."""
    start = time.monotonic()
    for index in range(per_s * seconds):
        await asyncio.sleep(max(0.0, start + index / per_s - time.monotonic()))
        to, url = run.target()
        sent = Sent(run.clock(), to)
        run.sent.append(sent)
        task = asyncio.ensure_future(_one(run, session, sent, url))
        run.in_flight.add(task)
        task.add_done_callback(run.in_flight.discard)


async def _one(run: Run, session: aiohttp.ClientSession, sent: Sent, url: str) -> None:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    try:
        async with session.post(url + "/v1/rate", json=BATCH, timeout=timeout) as response:
            await response.read()
            sent.status, sent.answered_s = response.status, run.clock()
    except (aiohttp.ClientError, TimeoutError) as exc:
        sent.error = f"{type(exc).__name__}: {exc}"


async def _until_settled(run: Run) -> None:
    """Until every request sent has its answer (or its error)."""
    async with asyncio.timeout(REQUEST_TIMEOUT_S + 5):
        await asyncio.gather(*run.in_flight)


async def _scale_to_zero_under_load(run: Run, session: aiohttp.ClientSession) -> dict[str, int]:
    """From the moment KEDA sets 0 replicas until 10 s after the last pod has gone,
    1 request/s: a draining pod answers it, or the activator holds it and wakes the
    fleet again. Every one must get its 200."""
    limit_s = run.settings.cooldown_s + 4 * run.settings.polling_s + 120
    async with asyncio.timeout(limit_s):
        await run.scaled_to_zero.wait()
    leaving = run.fleet.alive()
    first = len(run.sent)
    gone_for_s = 0.0
    while gone_for_s < 10.0:
        await _load(run, session, per_s=1, seconds=1)
        await asyncio.sleep(1.0)
        gone_for_s = gone_for_s + 1.0 if not any(pod.alive for pod in leaving) else 0.0
    await _until_settled(run)
    mine = run.sent[first:]
    return {
        "sent": len(mine),
        "answered_200": sum(sent.status == 200 for sent in mine),
        "5xx": sum(sent.status is not None and sent.status >= 500 for sent in mine),
        "lost": sum(sent.status is None for sent in mine),
    }


async def _until_zero(run: Run) -> None:
    """Until KEDA has scaled the fleet to 0 and its last pod has exited."""
    limit_s = run.settings.cooldown_s + 4 * run.settings.polling_s + 120
    for _ in range(int(limit_s / 0.2)):
        if not run.fleet.spec_replicas and not run.fleet.alive():
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the fleet was not back at 0 within {limit_s:g} s")


async def _push(run: Run) -> None:
    """KEDA's `external-push`: a `true` at zero scales to 1 at once."""
    while True:
        stream = run.keda.stream_is_active(run.ref(pods=False))
        with contextlib.suppress(Exception):  # KEDA reconnects after an error
            async for message in stream:
                if message.result and run.fleet.spec_replicas == 0:
                    run.hpa = None
                    run.last_active_s = run.clock()
                    run.scale(1, "StreamIsActive true")
        await asyncio.sleep(2.0)


async def _polling(run: Run) -> None:
    """KEDA's pollingInterval: IsActive, and scale to 0 after cooldownPeriod inactive."""
    while True:
        await asyncio.sleep(run.settings.polling_s)
        with contextlib.suppress(Exception):
            active = await run.keda.is_active(run.ref(pods=True))
            if active:
                run.last_active_s = run.clock()
            elif run.fleet.spec_replicas and (
                run.clock() - run.last_active_s >= run.settings.cooldown_s
            ):
                run.scale(0, f"inactive for cooldownPeriod {run.settings.cooldown_s:g} s")


async def _hpa(run: Run) -> None:
    """The HPA's syncs, from 1 replica up (at 0 it does nothing, as the real one)."""
    spec = HpaSpec(run.settings.target_per_pod, 1, 20, SCALED_OBJECT_BEHAVIOR)
    while True:
        await asyncio.sleep(run.settings.sync_s)
        replicas = run.fleet.spec_replicas
        if replicas == 0:
            continue
        reading = await run.keda.read(run.ref(pods=True))
        if reading.value is None:
            continue
        if run.hpa is None:
            run.hpa = Autoscaler.seeded(spec, now_s=run.clock(), replicas=replicas)
        decision = run.hpa.sync(
            run.clock(),
            value=reading.value,
            spec_replicas=replicas,
            pods=run.fleet.active_count(),
        )
        run.scale(decision.desired, f"HPA: {reading.value:.1f}/s")


async def _counter(run: Run, session: aiohttp.ClientSession, name: str) -> float:
    url = f"http://{run.activator.admin_address}/metrics"
    async with session.get(url) as response:
        text = (await response.read()).decode()
    line = f"openclaw_rating_activator_{name} "
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def _wakeup_json(wakeup: Wakeup) -> dict[str, Any]:
    keys = ("first_answer_s", "pod_ready_s", "held", "forwarded", "timed_out", "lost")
    found = asdict(wakeup)
    return {"name": wakeup.name, **{key: found[key] for key in keys}} | {
        "sent": wakeup.sent,
        "answered_200": wakeup.answered_200,
        "errors": wakeup.errors,
    }


def _summary_lines(wakeups: Sequence[Wakeup], through: int, leaving: dict[str, int]) -> list[str]:
    lines = []
    for wakeup in wakeups:
        first = f"{wakeup.first_answer_s:.2f} s" if wakeup.first_answer_s is not None else "none"
        ready = f"{wakeup.pod_ready_s:.2f} s" if wakeup.pod_ready_s is not None else "none"
        lines.append(
            f"{wakeup.name}: first 200 after {first} (the pod's own start {ready}); "
            f"{wakeup.sent} sent, {wakeup.answered_200} answered 200, {wakeup.held} held, "
            f"{wakeup.forwarded} forwarded, {wakeup.timed_out} timed out, {wakeup.lost} lost"
        )
    lines.append(f"through the activator while a pod was ready: {through}")
    lines.append(
        f"scale to zero under 1 request/s: {leaving['sent']} sent, {leaving['answered_200']} "
        f"answered 200, {leaving['5xx']} 5xx, {leaving['lost']} lost"
    )
    return lines


def _say(out: TextIO, run: Run, text: str) -> None:
    print(f"[{run.clock():6.1f} s] {text}", file=out, flush=True)

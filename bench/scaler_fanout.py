"""One poll cycle of the scaler over N pods (N = 10, 100, 1000), against a bare aiohttp floor.

The fake pods (`python -m harness.fakepods`) run in their own process pinned to core 1;
this process, pinned to core 0 with uvloop, drives (b) the scaler's real poller
(TargetPoller + PodClient + StaticDiscovery, with the metrics observer the server wires
in) and, cycle for cycle in alternation, (a) a bare aiohttp fan-out that only GETs
and decodes the same JSON. Reported per N: cycle time median and p99, CPU seconds of
this process per cycle (and the part of it spent in the garbage collector), CPU of
the pods' process per cycle, failed pods, and b/a.

Then two fleets beyond one ordinary target, each with the CPU, RSS and failed pods of
its cycles: `--targets T --per-target P` (default 100 x 50) polls T targets of P pods
each as the server wires them (one PodClient, one in-flight cap shared by all pollers,
`--max-in-flight` 64), all T in the same instant as every replica's ticker makes them,
cycle for cycle against (a) over all their pods; `--large N` (default 10,000) is one
target of N pods, the poller alone (the pods spread over processes of 5,000 each, as a
process may hold 20,000 files here, which the bare pool beside it would pass).

`--forecast` adds (d): the poller with `forecast: recurring` on its target, its
history 30 minutes of agent bursts, the forecast asked once per cycle; (d) against (b)
is what the forecast costs a scaler polling N pods.

`--workers N` (default 2) adds (c) beside them: the same poller with its pods in N
worker processes (`scaler.workers`), free to run on every core, their CPU added to this
process's; the fleets report the share of pods answered per cycle, and the workers'
RSS before and after their targets are forgotten.

What-ifs for fixes: `--max-in-flight K` adds (c), the poller with its fetches behind a
semaphore of K (each pod's timeout then starts when its request goes out, not when the
cycle starts); `--gc-threshold A,B,C` and `--gc-freeze` tune the garbage collector for
the whole run (freeze: after the imports and the warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import os
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp
import orjson
import uvloop
from prometheus_client import CollectorRegistry

from bench._scaler_procs import (
    FakePods,
    cpu_seconds,
    fake_pods,
    measure_noise,
    percentile,
    pin_self,
    table,
)
from bench.forecast_cost import agent_load
from harness import HOST
from harness.launch import raise_open_files
from harness.machine import machine
from scaler.bucket_state import BucketState
from scaler.discovery.static import StaticDiscovery
from scaler.metrics import ScalerMetrics
from scaler.pod_client import BUCKET_PATH, PodClient
from scaler.pod_errors import PodError
from scaler.poller import MAX_IN_FLIGHT_TOTAL, TargetPoller
from scaler.target_key import TargetKey
from scaler.worker import WorkerSettings
from scaler.workers import WorkerPods, WorkerPool

POLLER_CORE, PODS_CORE = 0, 1
TARGET_MS = 250.0
TARGET_PODS = 1000
BARE, POLLER = "a) bare", "b) poller"
FORECAST = "d) poller, forecast: recurring"
FORECAST_TARGET = 0.05  # the CPU `forecast: recurring` may add to a poll cycle, at most
FORECAST_WINDOW_S, FORECAST_LEAD_S = 5.0, 30.0  # the ScaledObject's window, the default lead
RECOVERY_POD_TIMEOUT_S = 1.0
ALL_CORES = os.sched_getaffinity(0)
FORGET_WAIT_S = 10.0  # after the workers' targets are forgotten, before their RSS is read
PODS_PER_PROCESS = 5000  # a listener and a connection each: 10,000 files of 20,000 allowed


@dataclass
class Cycles:
    """Per-cycle figures of one fan-out kind at one N."""

    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    gc_s: list[float] = field(default_factory=list)
    pods_cpu_s: float = 0.0
    failures: int = 0
    cycles_with_failures: int = 0
    cold_s: float = 0.0
    cold_failures: int = 0
    workers_cpu_s: list[float] = field(default_factory=list)  # (c): its workers' CPU
    failed_per_cycle: list[int] = field(default_factory=list)


@dataclass
class SizeResult:
    pods: int
    kinds: dict[str, Cycles]  # "a) bare" first, then the poller(s)
    noise: str = ""  # others' share of the two cores just before
    recovery_cpu_s: list[float] = field(default_factory=list)  # cycle after all pods failed
    steady_cpu_s: list[float] = field(default_factory=list)  # the cycle after that


class PodsCpu(Protocol):
    def cpu_seconds(self) -> float: ...


FanOut = Callable[[], Awaitable[int]]  # one cycle; returns how many pods failed
Fetch = Callable[[str, int], Awaitable[BucketState]]


class GcTimer:
    """CPU seconds spent in the cyclic garbage collector, from `gc.callbacks`."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self._started = 0.0

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.total_s += time.process_time() - self._started


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    raise_open_files(max(args.sizes) * 2 + 256)
    where = pin_self(POLLER_CORE)
    if args.gc_threshold:
        gc.set_threshold(*args.gc_threshold)
    results, profiles = [], []
    for count in args.sizes:
        bound_s = 60 + args.cycles * 2  # the pods' process ends by itself after this
        noise = measure_noise([POLLER_CORE, PODS_CORE])
        with fake_pods(count, demand_per_s=10.0, seconds=bound_s, core=PODS_CORE) as pods:
            result, profiled = uvloop.run(measure(pods, args))
        result.noise = " / ".join(f"{core.taken_share:.0%}" for core in noise)
        results.append(result)
        profiles += [profiled] if profiled else []
    print_report(results, args, where)
    for text in profiles:
        print(text)
    fleets = []
    if args.targets:
        fleets.append(measure_fleet(args.targets, args.per_target, args, with_bare=True))
    if args.large:
        fleets.append(measure_fleet(1, args.large, args, with_bare=False))
    if fleets:
        print_fleets(fleets, args)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench scaler_fanout", description=__doc__)
    parser.add_argument("--sizes", type=_sizes, default=[10, 100, 1000], help="pod counts")
    parser.add_argument("--cycles", type=int, help="measured cycles per kind (default 30)")
    parser.add_argument("--warmup", type=int, help="warm-up cycles per kind (default 3)")
    parser.add_argument("--gap", type=float, help="seconds between cycles (default 0.2)")
    parser.add_argument("--pod-timeout", type=float, default=0.25, help="PodClient timeout")
    parser.add_argument(
        "--max-in-flight", type=int, default=0, help="what-if: bound the poller's fetches"
    )
    parser.add_argument("--gc-threshold", type=_sizes, help="what-if: gc.set_threshold(A, B, C)")
    parser.add_argument("--gc-freeze", action="store_true", help="what-if: gc.freeze()")
    parser.add_argument(
        "--recoveries", type=int, help="cycles after a failed one to measure (default 5)"
    )
    parser.add_argument("--targets", type=int, default=100, help="targets of the fleet run")
    parser.add_argument("--per-target", type=int, default=50, help="pods of each of them")
    parser.add_argument("--large", type=int, default=10_000, help="pods of the one large target")
    parser.add_argument("--profile", action="store_true", help="cProfile the largest N")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="adds (c): the poller with its pods in this many worker processes (0: no (c))",
    )
    parser.add_argument(
        "--only-workers", action="store_true", help="fleets: (c) alone, without (b) beside it"
    )
    parser.add_argument(
        "--forecast",
        action="store_true",
        help="add (d): the poller with forecast: recurring on its target (the forecast's cost)",
    )
    parser.add_argument("--quick", action="store_true", help="10 cycles, 2 warm-up, gap 0.1 s")
    args = parser.parse_args(argv)
    defaults = (10, 2, 0.1, 3) if args.quick else (30, 3, 0.2, 5)
    names = ("cycles", "warmup", "gap", "recoveries")
    for name, default in zip(names, defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


async def measure(pods: FakePods, args: argparse.Namespace) -> tuple[SizeResult, str]:
    clients = [PodClient(args.pod_timeout)]
    poller = make_poller(pods.ports, clients[0].fetch)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector) as session:
        kinds: dict[str, tuple[FanOut, Cycles]] = {
            BARE: (lambda: bare_cycle(session, pods.ports), Cycles()),
            POLLER: (lambda: poller_cycle(poller, len(pods.ports)), Cycles()),
        }
        if args.max_in_flight:
            clients.append(PodClient(args.pod_timeout))
            gated = make_poller(pods.ports, bounded(clients[1].fetch, args.max_in_flight))
            kinds[f"c) poller, semaphore {args.max_in_flight}"] = (
                lambda: poller_cycle(gated, len(pods.ports)),
                Cycles(),
            )
        if args.forecast:
            forecasting = make_poller(pods.ports, clients[0].fetch)
            with_history(forecasting)
            kinds[FORECAST] = (lambda: forecast_cycle(forecasting, len(pods.ports)), Cycles())
        pool = None
        if args.workers:
            pool = await start_pool(args)
            sharded = make_poller(pods.ports, clients[0].fetch, shards=pool)
            cycles = Cycles()
            kinds[workers_kind(args)] = (
                lambda: workers_cycle(sharded, len(pods.ports), pool, cycles),
                cycles,
            )
        await measure_kinds(list(kinds.values()), pods, args)
        if pool is not None:
            await pool.stop()
        profiled = ""
        if args.profile and len(pods.ports) == max(args.sizes):
            profiled = await profile(kinds[POLLER][0], len(pods.ports), args)
    for client in clients:
        await client.close()
    result = SizeResult(len(pods.ports), {name: cycles for name, (_, cycles) in kinds.items()})
    if args.recoveries:
        await measure_recovery(result, pods.ports, args)
    return result, profiled


async def measure_recovery(result: SizeResult, ports: list[int], args: argparse.Namespace) -> None:
    """CPU of the cycle in which every pod answers again after one failed cycle (a network
    blip), against the next, ordinary cycle; on a poller of its own, whose pod timeout of
    1 s keeps the timeouts of a slow cycle out of this figure."""
    client = PodClient(RECOVERY_POD_TIMEOUT_S)
    down = False

    async def fetch(host: str, port: int) -> BucketState:
        if down:
            raise PodError("connect", "blip")
        return await client.fetch(host, port)

    poller = make_poller(ports, fetch)
    for _ in range(args.warmup + 1):
        await poller.poll_once()
        await asyncio.sleep(args.gap)
    for _ in range(args.recoveries):
        down = True
        await poller.poll_once()
        down = False
        for series in (result.recovery_cpu_s, result.steady_cpu_s):
            await asyncio.sleep(args.gap)
            cpu = time.process_time()
            await poller.poll_once()
            series.append(time.process_time() - cpu)
        await asyncio.sleep(args.gap)
    await client.close()


async def measure_kinds(
    kinds: list[tuple[FanOut, Cycles]], pods: PodsCpu, args: argparse.Namespace
) -> None:
    """Warm each kind up, then one measured cycle of each in turn, the order rotating."""
    for fan_out, cycles in kinds:
        await warm_up(fan_out, cycles, args)
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    with GcTimer() as gc_timer:
        for index in range(args.cycles):
            shift = index % len(kinds)
            for fan_out, cycles in kinds[shift:] + kinds[:shift]:
                await one_cycle(fan_out, cycles, pods, gc_timer)
                await asyncio.sleep(args.gap)


def make_poller(
    ports: list[int],
    fetch: Fetch,
    shared: asyncio.Semaphore | None = None,
    shards: WorkerPool | None = None,
) -> TargetPoller:
    """The scaler's poller as `scaler.server` wires it, metrics observer included."""
    endpoints = tuple((HOST, port) for port in ports)
    target = TargetKey(service=None, endpoints=endpoints, port=9090)
    return TargetPoller(
        target,
        StaticDiscovery(endpoints),
        fetch,
        poll_interval_s=1.0,
        on_cycle=ScalerMetrics(CollectorRegistry()).on_cycle,
        shared_in_flight=shared,
        shards=None if shards is None else WorkerPods(shards, target.label, 0.25),
    )


def workers_kind(args: argparse.Namespace) -> str:
    return f"c) poller, {args.workers} worker(s)"


async def start_pool(args: argparse.Namespace) -> WorkerPool:
    """Worker processes as `scaler.server` starts them, free to run on every core (they
    inherit this process's pinning otherwise)."""
    settings = WorkerSettings(0, 0, args.pod_timeout, None, MAX_IN_FLIGHT_TOTAL, "warning")
    pool = WorkerPool(args.workers, settings)
    await pool.start()
    for pid in pool.pids():
        os.sched_setaffinity(pid, ALL_CORES)
    return pool


async def workers_cycle(poller: TargetPoller, count: int, pool: WorkerPool, cycles: Cycles) -> int:
    """One cycle through the workers; their CPU is added to this process's."""
    workers_cpu = sum(cpu_seconds(pid) for pid in pool.pids())
    started = time.monotonic()
    await poller.poll_once()
    cycles.workers_cpu_s.append(sum(cpu_seconds(pid) for pid in pool.pids()) - workers_cpu)
    answered = sum(pod.error is None and pod.last_ok_at >= started for pod in poller.pod_readings)
    return count - answered


def bounded(fetch: Fetch, max_in_flight: int) -> Fetch:
    if max_in_flight <= 0:
        return fetch
    gate = asyncio.Semaphore(max_in_flight)

    async def fetch_when_free(host: str, port: int) -> BucketState:
        async with gate:
            return await fetch(host, port)

    return fetch_when_free


async def warm_up(fan_out: FanOut, cycles: Cycles, args: argparse.Namespace) -> None:
    """A cold cycle, which also opens every connection, then a few unmeasured ones."""
    started = time.perf_counter()
    cycles.cold_failures = await fan_out()
    cycles.cold_s = time.perf_counter() - started
    for _ in range(args.warmup):
        await asyncio.sleep(args.gap)
        await fan_out()
    await asyncio.sleep(args.gap)


async def one_cycle(fan_out: FanOut, cycles: Cycles, pods: PodsCpu, gc_timer: GcTimer) -> None:
    pods_cpu, gc_s = pods.cpu_seconds(), gc_timer.total_s
    cpu, started = time.process_time(), time.perf_counter()
    failed = await fan_out()
    cycles.wall_s.append(time.perf_counter() - started)
    cycles.cpu_s.append(time.process_time() - cpu + (cycles.workers_cpu_s or [0.0])[-1])
    cycles.gc_s.append(gc_timer.total_s - gc_s)
    cycles.pods_cpu_s += pods.cpu_seconds() - pods_cpu
    cycles.failures += failed
    cycles.failed_per_cycle.append(failed)
    cycles.cycles_with_failures += failed > 0


async def poller_cycle(poller: TargetPoller, count: int) -> int:
    started = time.monotonic()  # the poller's clock
    await poller.poll_once()
    answered = sum(
        not series.failed_last_poll and series.last_ok_at >= started
        for series in poller.pods.values()
    )
    return count - answered


def with_history(poller: TargetPoller) -> None:
    """The poller's target with `forecast: recurring`, its history already 30 minutes of
    agent bursts (`bench.forecast_cost.agent_load`), so that each period search runs on
    a real pattern as in a scaler that has been up for a while."""
    view = poller.view
    view.touch(FORECAST_WINDOW_S, forecast=True)
    assert view.forecast is not None
    load, _ = agent_load(1)
    start_s = time.monotonic() - len(load)
    for second, demand in enumerate(load):
        view.forecast.record(start_s + second, demand)


async def forecast_cycle(poller: TargetPoller, count: int) -> int:
    """A poll cycle of a forecasting target (its history recorded, its period searched
    every 15 s), then the forecast asked once, as a GetMetrics and `/v1/targets` ask."""
    failed = await poller_cycle(poller, count)
    forecast = poller.view.forecast
    assert forecast is not None
    forecast.forecast(FORECAST_LEAD_S)
    forecast.next_burst_in_s()
    return failed


async def bare_cycle(session: aiohttp.ClientSession, ports: list[int]) -> int:
    async def get(port: int) -> bool:
        try:
            async with session.get(f"http://{HOST}:{port}{BUCKET_PATH}") as response:
                return response.status == 200 and "pod" in orjson.loads(await response.read())
        except (aiohttp.ClientError, OSError, ValueError):
            return False

    answers = await asyncio.gather(*(get(port) for port in ports))
    return len(ports) - sum(answers)


async def profile(fan_out: FanOut, count: int, args: argparse.Namespace) -> str:
    profiler = cProfile.Profile()
    for _ in range(args.cycles):
        profiler.enable()
        await fan_out()
        profiler.disable()
        await asyncio.sleep(args.gap)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    lines = [line.rstrip() for line in out.getvalue().splitlines() if line.strip()]
    title = f"cProfile of {args.cycles} poller cycles over {count} pods, by own time"
    return f"\n{title}:\n\n```text\n" + "\n".join(lines) + "\n```\n"


def print_report(results: list[SizeResult], args: argparse.Namespace, where: str) -> None:
    bound = (
        f"; (c) the same with its fetches behind a semaphore of {args.max_in_flight}"
        if args.max_in_flight
        else ""
    )
    print(
        f"{machine()}. Poller process on {where} with uvloop; fake pods' process on core "
        f"{PODS_CORE}. Per N: 1 cold cycle, {args.warmup} warm-up and {args.cycles} measured "
        f"cycles of each kind, alternating, {args.gap:g} s apart; keep-alive; pod timeout "
        f"{args.pod_timeout:g} s. (a) bare aiohttp GET + JSON decode, (b) the scaler's "
        f"TargetPoller.poll_once(){bound}. CPU and GC are means per cycle (this process); "
        f"GC is part of CPU; GC thresholds {gc.get_threshold()}"
        f"{', frozen after warm-up' if args.gc_freeze else ''}. Last column: share of core "
        f"{POLLER_CORE} / core {PODS_CORE} that other tenants took in a 1 s probe just before.\n"
    )
    header = [
        "pods", "kind", "cycle median ms", "cycle p99 ms", "CPU ms/cycle", "GC ms/cycle",
        "pods' CPU ms/cycle", "failed pods (cycles)", "cold cycle ms (failed)", "others",
    ]  # fmt: skip
    rows = []
    for result in results:
        rows += [
            [*row(result.pods, name, cycles), result.noise] for name, cycles in result.kinds.items()
        ]
    print(table(header, rows, [True, False, *[True] * 8]))
    print()
    for result in results:
        bare = result.kinds[BARE]
        for name, cycles in list(result.kinds.items())[1:]:
            ratio = statistics.median(cycles.wall_s) / statistics.median(bare.wall_s)
            cpu_ratio = statistics.fmean(cycles.cpu_s) / statistics.fmean(bare.cpu_s)
            print(
                f"- {result.pods} pods, {name[:1]}/a: cycle time {ratio:.2f}, CPU {cpu_ratio:.2f}"
            )
    print_forecast_cost(results)
    print_recovery(results)
    verdict(results)


def print_forecast_cost(results: list[SizeResult]) -> None:
    """(d) against (b): what `forecast: recurring` adds to a poll cycle's CPU."""
    for result in results:
        if FORECAST in result.kinds:
            plain = statistics.fmean(result.kinds[POLLER].cpu_s)
            extra = statistics.fmean(result.kinds[FORECAST].cpu_s) / plain - 1
            verdict_text = "within" if extra <= FORECAST_TARGET else "over"
            print(
                f"- {result.pods} pods, the forecast's cost: CPU per cycle {extra:+.1%} "
                f"(d against b), {verdict_text} the target of +{FORECAST_TARGET:.0%}"
            )


def print_recovery(results: list[SizeResult]) -> None:
    measured = [result for result in results if result.recovery_cpu_s]
    if not measured:
        return
    print(
        "\nThe poller's cycle after one cycle in which every pod failed (all answer again), "
        "against the ordinary cycle after it; CPU ms, medians of "
        f"{len(measured[0].recovery_cpu_s)}, pod timeout {RECOVERY_POD_TIMEOUT_S:g} s:\n"
    )
    rows = []
    for result in measured:
        recovering = statistics.median(result.recovery_cpu_s)
        steady = statistics.median(result.steady_cpu_s)
        rows.append(
            [
                str(result.pods),
                f"{recovering * 1e3:.1f}",
                f"{steady * 1e3:.1f}",
                f"{recovering / steady:.2f}",
            ]
        )
    header = ["pods", "recovering cycle CPU ms", "next cycle CPU ms", "ratio"]
    print(table(header, rows, [True] * 4))


def row(pods: int, name: str, cycles: Cycles) -> list[str]:
    measured = len(cycles.wall_s)
    return [
        str(pods),
        name,
        f"{statistics.median(cycles.wall_s) * 1e3:.1f}",
        f"{percentile(cycles.wall_s, 99) * 1e3:.1f}",
        f"{statistics.fmean(cycles.cpu_s) * 1e3:.1f}",
        f"{statistics.fmean(cycles.gc_s) * 1e3:.1f}",
        f"{cycles.pods_cpu_s / measured * 1e3:.1f}",
        f"{cycles.failures} ({cycles.cycles_with_failures}/{measured})",
        f"{cycles.cold_s * 1e3:.0f} ({cycles.cold_failures})",
    ]


def verdict(results: list[SizeResult]) -> None:
    for result in results:
        if result.pods != TARGET_PODS:
            continue
        for name, cycles in result.kinds.items():
            if name == BARE:
                continue
            median_ms = statistics.median(cycles.wall_s) * 1e3
            ok = median_ms < TARGET_MS and cycles.failures == 0
            print(
                f"\n{TARGET_PODS} pods, {name}: cycle median **{median_ms:.0f} ms**, "
                f"{cycles.failures} failed polls in measured cycles: "
                f"{'meets' if ok else 'misses'} the target (< {TARGET_MS:.0f} ms per cycle)"
            )


@dataclass
class Fleet:
    targets: int
    per_target: int
    kinds: dict[str, Cycles]
    rss_mib: dict[str, float]  # this process: before the pollers, after their cycles
    noise: str = ""


@dataclass(frozen=True)
class PodProcesses:
    """Fake pods spread over several processes, seen as one."""

    parts: list[FakePods]

    @property
    def ports(self) -> list[int]:
        return [port for part in self.parts for port in part.ports]

    def cpu_seconds(self) -> float:
        return sum(part.cpu_seconds() for part in self.parts)


def measure_fleet(
    targets: int, per_target: int, args: argparse.Namespace, *, with_bare: bool
) -> Fleet:
    count = targets * per_target
    raise_open_files(2 * count + 256)
    noise = measure_noise([POLLER_CORE, PODS_CORE])
    bound_s = 120 + args.cycles * 10
    with contextlib.ExitStack() as stack:
        parts = [
            stack.enter_context(fake_pods(size, demand_per_s=10.0, seconds=bound_s, core=PODS_CORE))
            for size in _split(count, PODS_PER_PROCESS)
        ]
        fleet = uvloop.run(fleet_cycles(PodProcesses(parts), targets, per_target, args, with_bare))
    fleet.noise = " / ".join(f"{core.taken_share:.0%}" for core in noise)
    return fleet


def _split(count: int, most: int) -> list[int]:
    return [min(most, count - first) for first in range(0, count, most)]


async def fleet_cycles(
    pods: PodProcesses, targets: int, per_target: int, args: argparse.Namespace, with_bare: bool
) -> Fleet:
    rss = {"before": rss_mib()}
    client = PodClient(args.pod_timeout)
    shared = asyncio.Semaphore(MAX_IN_FLIGHT_TOTAL)
    ports = pods.ports
    shares = [ports[index * per_target : (index + 1) * per_target] for index in range(targets)]
    name = f"b) {targets} poller(s)" if targets > 1 else "b) poller"
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
    pool = await start_pool(args) if args.workers else None
    async with aiohttp.ClientSession(connector=connector) as session:
        kinds: dict[str, tuple[FanOut, Cycles]] = {}
        if with_bare and not args.only_workers:
            kinds[BARE] = (lambda: bare_cycle(session, ports), Cycles())
        if not args.only_workers:
            pollers = [make_poller(share, client.fetch, shared) for share in shares]
            kinds[name] = (lambda: fleet_cycle(pollers, per_target), Cycles())
        if pool is not None:
            sharded = [make_poller(share, client.fetch, shards=pool) for share in shares]
            cycles = Cycles()
            kinds[workers_kind(args)] = (
                lambda: sharded_fleet_cycle(sharded, per_target, pool, cycles),
                cycles,
            )
        await measure_kinds(list(kinds.values()), pods, args)
    rss["after"] = rss_mib()
    if pool is not None:
        rss["workers"] = sum(rss_mib(pid) for pid in pool.pids())
        for poller in sharded:
            await poller.stop()  # forgotten: an emptied worker is restarted
        await asyncio.sleep(FORGET_WAIT_S)
        rss["workers forgotten"] = sum(rss_mib(pid) for pid in pool.pids())
        rss["forgotten"] = rss_mib()
        await pool.stop()
    await client.close()
    return Fleet(targets, per_target, {n: cycles for n, (_, cycles) in kinds.items()}, rss)


async def sharded_fleet_cycle(
    pollers: Sequence[TargetPoller], per_target: int, pool: WorkerPool, cycles: Cycles
) -> int:
    workers_cpu = sum(cpu_seconds(pid) for pid in pool.pids())
    started = time.monotonic()
    await asyncio.gather(*(poller.poll_once() for poller in pollers))
    cycles.workers_cpu_s.append(sum(cpu_seconds(pid) for pid in pool.pids()) - workers_cpu)
    answered = sum(
        pod.error is None and pod.last_ok_at >= started
        for poller in pollers
        for pod in poller.pod_readings
    )
    return len(pollers) * per_target - answered


async def fleet_cycle(pollers: Sequence[TargetPoller], per_target: int) -> int:
    """Every target's cycle in the same instant; returns the pods that did not answer."""
    failed = await asyncio.gather(*(poller_cycle(poller, per_target) for poller in pollers))
    return sum(failed)


def rss_mib(pid: int | None = None) -> float:
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def print_fleets(fleets: list[Fleet], args: argparse.Namespace) -> None:
    print(
        f"\nFleets: pollers sharing one PodClient and an in-flight cap of {MAX_IN_FLIGHT_TOTAL}, "
        f"all targets' cycles at once; poll interval 1 s (a pod whose turn comes later is not "
        f"polled, and counts as failed); {args.cycles} measured cycles per kind. RSS of this "
        "process before the pollers and after their cycles.\n"
    )
    header = [
        "fleet", "kind", "cycle median ms", "cycle p99 ms", "CPU ms/cycle", "GC ms/cycle",
        "pods' CPU ms/cycle", "failed pods (cycles)", "cold cycle ms (failed)", "RSS MiB",
        "others",
    ]  # fmt: skip
    rows = []
    for fleet in fleets:
        label = f"{fleet.targets} x {fleet.per_target}"
        rss = f"{fleet.rss_mib['before']:.0f} -> {fleet.rss_mib['after']:.0f}"
        if "workers" in fleet.rss_mib:
            rss += (
                f"; workers {fleet.rss_mib['workers']:.0f}, {FORGET_WAIT_S:.0f} s after "
                f"forgetting: {fleet.rss_mib['forgotten']:.0f} + workers "
                f"{fleet.rss_mib['workers forgotten']:.0f}"
            )
        for name, cycles in fleet.kinds.items():
            rows.append(
                [*row(fleet.targets * fleet.per_target, name, cycles)[1:], rss, fleet.noise]
            )
            rows[-1].insert(0, label)
    print(table(header, rows, [False, False, *[True] * 9]))
    for fleet in fleets:
        count = fleet.targets * fleet.per_target
        for name, cycles in fleet.kinds.items():
            answered = [1 - failed / count for failed in cycles.failed_per_cycle]
            print(
                f"- {fleet.targets} x {fleet.per_target}, {name}: pods answered per cycle, "
                f"median {statistics.median(answered):.1%}, worst {min(answered):.1%}; "
                f"cycles with every pod answered: {sum(a == 1 for a in answered)}/{len(answered)}"
            )
    for fleet in fleets:
        if BARE in fleet.kinds:
            bare = fleet.kinds[BARE]
            polled = next(cycles for name, cycles in fleet.kinds.items() if name != BARE)
            ratio = statistics.median(polled.wall_s) / statistics.median(bare.wall_s)
            cpu_ratio = statistics.fmean(polled.cpu_s) / statistics.fmean(bare.cpu_s)
            print(
                f"- {fleet.targets} x {fleet.per_target}, b/a: cycle time {ratio:.2f}, "
                f"CPU {cpu_ratio:.2f}"
            )

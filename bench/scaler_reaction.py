"""Seconds from a load step (0 to 60 req/s) until GetMetrics reports at least 85 % of it.

Real processes on 127.0.0.1: 2 rating-api pods (default bucket), the scaler
(`python -m scaler --poll-interval 1`), one `hey` per pod sending its share of 60 req/s
of `POST /v1/rate`. This process asks GetMetrics (trigger `window` 2) every 100 ms. Each
step starts when the `hey` processes are started; the pods' `/v1/bucket` counters,
read every 10 ms until they move, tell when the first request arrived (hey's own
start-up and its pacing come first). The steps start at evenly spread phases of the
scaler's 1 s poll period (from /v1/targets), since where in the period a step lands
decides most of the figure. Between steps the load stops and the reported demand is
let fall back near 0.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc
import uvloop

from bench._scaler_procs import ScalerProcess, cpu_noise, endpoints_metadata, scaler_process, table
from harness import Child, RatingApi, spawn, start, stop_all
from harness.hey import hey_argv, require_hey
from harness.keda_client import KedaClient, metrics_request, scaled_object_ref
from harness.machine import machine
from scaler._proto import externalscaler_pb2 as pb

LOAD_PER_S = 60.0
REACHED_SHARE = 0.85
QUIET_SHARE = 0.05
TARGET_S = 2.0
ASK_EVERY_S = 0.1
WATCH_EVERY_S = 0.01
HEY_WORKERS = 2
BODY = '{"items":[{"id":"a","up":1,"down":0}]}'


@dataclass
class Step:
    phase_s: float
    first_request_s: float = float("nan")  # from the step's start
    reached_s: float = float("nan")  # from the step's start
    settled_per_s: float = float("nan")  # GetMetrics over the load's last second, median
    delivered_per_s: float = float("nan")  # what the pods counted
    fall_s: float = float("nan")  # from the load's end until back under QUIET_SHARE
    values: list[tuple[float, float]] = field(default_factory=list)  # (s from start, value)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    try:
        require_hey()
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    noise = cpu_noise([0, 1])
    with tempfile.TemporaryDirectory(prefix="bench-reaction-") as tmp, ExitStack() as stack:
        pods = stack.enter_context(rating_pods(Path(tmp), args.pods))
        scaler = stack.enter_context(scaler_process(core=None, poll_interval_s=1.0))
        steps = uvloop.run(run_steps(pods, scaler, args))
    print_report(steps, args, noise)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench scaler_reaction", description=__doc__)
    parser.add_argument("--steps", type=int, default=5, help="load steps (default 5)")
    parser.add_argument("--pods", type=int, default=2, help="rating-api processes (1-3)")
    parser.add_argument("--load", type=float, default=6.0, help="seconds of load per step")
    parser.add_argument("--quick", action="store_true", help="3 steps of 4 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.load = 3, 4.0
    if not 1 <= args.pods <= 3:
        parser.error("--pods: 1 to 3")
    return args


@contextmanager
def rating_pods(log_dir: Path, count: int) -> Iterator[list[Child]]:
    pods: list[Child] = []
    try:
        for index in range(count):
            api = RatingApi(pod_name=f"rating-api-{index}", log_level="warning")
            pods.append(start(api, log_dir / f"{api.name}.log"))
        yield pods
    finally:
        stop_all(pods)


async def run_steps(
    pods: list[Child], scaler: ScalerProcess, args: argparse.Namespace
) -> list[Step]:
    metadata = endpoints_metadata([pod.ports["admin"] for pod in pods], window="2")
    ref = scaled_object_ref("rating-api", "edge", metadata)
    request = metrics_request(ref, "openclaw-demand")
    async with (
        KedaClient.insecure(scaler.service.grpc_target) as client,
        aiohttp.ClientSession() as session,
    ):
        await wait_quiet(client, request, timeout_s=15)
        steps = []
        for index in range(args.steps):
            step = Step(phase_s=index / args.steps)
            await wait_quiet(client, request, timeout_s=20)
            await align(session, scaler, step.phase_s)
            await one_step(step, client, request, session, pods, args)
            steps.append(step)
        return steps


async def get_metric(client: KedaClient, request: pb.GetMetricsRequest) -> float:
    try:
        response = await client.get_metrics(request, timeout_s=2)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return float("nan")  # no fresh data yet
        raise
    return float(response.metricValues[0].metricValueFloat)


async def wait_quiet(client: KedaClient, request: pb.GetMetricsRequest, timeout_s: float) -> float:
    """Until GetMetrics reports demand near 0; returns the seconds that took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        value = await get_metric(client, request)
        if value < QUIET_SHARE * LOAD_PER_S:
            return time.perf_counter() - started
        await asyncio.sleep(ASK_EVERY_S)
    raise SystemExit(f"demand did not fall under {QUIET_SHARE:.0%} within {timeout_s:g} s")


async def align(session: aiohttp.ClientSession, scaler: ScalerProcess, phase_s: float) -> None:
    """Sleep until `phase_s` seconds after the end of one of the scaler's poll cycles."""
    url = scaler.child.url("http", "/v1/targets")
    async with session.get(url) as response:
        targets = await response.json()
    ages = [pod["age_s"] for pod in targets["targets"][0]["pods"] if pod["age_s"] is not None]
    await asyncio.sleep((phase_s - min(ages)) % 1.0)


async def one_step(
    step: Step,
    client: KedaClient,
    request: pb.GetMetricsRequest,
    session: aiohttp.ClientSession,
    pods: list[Child],
    args: argparse.Namespace,
) -> None:
    baseline = await requested_total(session, pods)
    started = time.perf_counter()
    loads = [start_hey(pod, len(pods), args.load) for pod in pods]
    try:
        watcher = asyncio.create_task(first_request(session, pods, baseline, started))
        await follow(step, client, request, started, started + args.load)
        step.first_request_s = await watcher
        ended = time.perf_counter()
        step.delivered_per_s = (await requested_total(session, pods) - baseline) / (
            ended - started - step.first_request_s
        )
    finally:
        stop_all(loads)
    step.fall_s = await wait_quiet(client, request, timeout_s=20)


def start_hey(pod: Child, pods: int, load_s: float) -> Child:
    per_worker = LOAD_PER_S / pods / HEY_WORKERS
    argv = hey_argv(
        pod.url("public", "/v1/rate"),
        duration_s=load_s,
        workers=HEY_WORKERS,
        per_worker_per_s=per_worker,
        body=BODY,
    )
    return spawn(f"hey-{pod.name}", argv, pod.log_path.with_name(f"hey-{pod.name}.log"))


async def requested_total(session: aiohttp.ClientSession, pods: list[Child]) -> float:
    """Tokens asked for across the pods since they started, granted or denied."""

    async def one(pod: Child) -> float:
        async with session.get(pod.url("admin", "/v1/bucket")) as response:
            state = await response.json()
        return float(state["granted_total"] + state["denied_total"])

    return sum(await asyncio.gather(*(one(pod) for pod in pods)))


async def first_request(
    session: aiohttp.ClientSession, pods: list[Child], baseline: float, started: float
) -> float:
    """Seconds from the step's start until the pods counted a request (to ±10 ms)."""
    while time.perf_counter() - started < 10:
        if await requested_total(session, pods) > baseline:
            return time.perf_counter() - started
        await asyncio.sleep(WATCH_EVERY_S)
    return float("nan")


async def follow(
    step: Step,
    client: KedaClient,
    request: pb.GetMetricsRequest,
    started: float,
    load_ends: float,
) -> None:
    """Ask GetMetrics every 100 ms until the load ends; note when it first reached 85 %."""
    next_at = started
    while time.perf_counter() < load_ends:
        value = await get_metric(client, request)
        answered = time.perf_counter() - started
        step.values.append((answered, value))
        if value >= REACHED_SHARE * LOAD_PER_S and math.isnan(step.reached_s):
            step.reached_s = answered
        next_at += ASK_EVERY_S
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    last_second = [value for at, value in step.values if at >= load_ends - started - 1.0]
    step.settled_per_s = statistics.median(last_second) if last_second else float("nan")


def print_report(steps: list[Step], args: argparse.Namespace, noise: str) -> None:
    share = LOAD_PER_S / args.pods / HEY_WORKERS
    print(
        f"{machine()}, nothing pinned. {args.pods} rating-api pods (default bucket: 100 tokens, "
        f"50/s), each loaded by `hey -c {HEY_WORKERS} -q {share:g}` (POST /v1/rate), "
        f"{LOAD_PER_S:g} req/s in all for {args.load:g} s per step; scaler `--poll-interval 1 "
        f"--pod-timeout 0.25`, trigger `window` 2, metric `demand`; GetMetrics asked every "
        f"{ASK_EVERY_S * 1e3:.0f} ms. Threshold {REACHED_SHARE:.0%} = "
        f"{REACHED_SHARE * LOAD_PER_S:g}/s. CPU noise just before: {noise}.\n"
    )
    header = [
        "step", "phase after a poll s", "first request s", "reached 85 % s",
        "from first request s", "settled value /s", "delivered req/s", "fall under 5 % s",
    ]  # fmt: skip
    rows = [
        [
            str(index),
            f"{step.phase_s:.1f}",
            f"{step.first_request_s:.2f}",
            f"{step.reached_s:.2f}",
            f"{step.reached_s - step.first_request_s:.2f}",
            f"{step.settled_per_s:.1f}",
            f"{step.delivered_per_s:.1f}",
            f"{step.fall_s:.1f}",
        ]
        for index, step in enumerate(steps, start=1)
    ]
    rows.append(median_row(steps))
    print(table(header, rows, [True] * len(header)))
    verdict(steps)


def median_row(steps: list[Step]) -> list[str]:
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    return [
        "**median**",
        "",
        f"{median([s.first_request_s for s in steps]):.2f}",
        f"**{median([s.reached_s for s in steps]):.2f}**",
        f"{median([s.reached_s - s.first_request_s for s in steps]):.2f}",
        f"{median([s.settled_per_s for s in steps]):.1f}",
        f"{median([s.delivered_per_s for s in steps]):.1f}",
        f"{median([s.fall_s for s in steps]):.1f}",
    ]


def verdict(steps: list[Step]) -> None:
    reached = [step.reached_s for step in steps]
    missed = sum(math.isnan(value) for value in reached)
    median_s = statistics.median(reached)
    ok = missed == 0 and median_s <= TARGET_S
    print(
        f"\nmedian **{median_s:.2f} s** from the start of the load to "
        f"{REACHED_SHARE:.0%} in GetMetrics, worst {max(reached):.2f} s"
        f"{f', {missed} step(s) never reached it' if missed else ''}: "
        f"{'meets' if ok else 'misses'} the target (at most {TARGET_S:g} s)"
    )

"""GetMetrics latency and calls/s of the scaler while it polls a 1000-pod target every second.

The scaler runs as `python -m scaler` pinned to core 0; this process, the gRPC client
(grpc.aio on uvloop), is pinned to core 1 together with the fake pods' process
(`python -m harness.fakepods`, about 1000 requests/s). Three runs, one after the
other on the same scaler: 50 callers in a closed loop (each calls again as soon as it
has its answer: the most the scaler gives), 50 callers paced to a fixed total rate
below that, and 1 caller (latency without queueing). Client-side latency includes the
client's own work; when the client uses most of its core the figures say so, and the
scaler's own histogram `openclaw_rating_scaler_rpc_duration_seconds` (time inside the
handler, read from its /metrics) is printed beside them as a second view.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass

import grpc
import uvloop
from prometheus_client.parser import text_string_to_metric_families

from bench._scaler_procs import (
    ScalerProcess,
    cpu_noise,
    endpoints_metadata,
    fake_pods,
    percentile,
    pin_self,
    scaler_process,
    table,
)
from harness.keda_client import KedaClient, metrics_request, scaled_object_ref
from harness.machine import machine
from scaler._proto import externalscaler_pb2 as pb

SCALER_CORE, CLIENT_CORE = 0, 1
DEMAND_PER_POD = 10.0
PHASE_BINS = 20  # of the 1 s poll period: 50 ms each
TARGET_P99_MS = 5.0
HISTOGRAM = "openclaw_rating_scaler_rpc_duration_seconds"
POLL_HISTOGRAM = "openclaw_rating_scaler_poll_duration_seconds"
POD_ERRORS = "openclaw_rating_scaler_pod_errors"
BUSY_CLIENT = 0.8  # share of its core above which the client's own queueing shows


@dataclass(frozen=True)
class Scenario:
    name: str
    pods: int
    callers: int
    rate_per_s: float | None  # total pace; None = closed loop
    duration_s: float


@dataclass
class Outcome:
    scenario: Scenario
    latencies_s: list[float]
    sent_at: list[float]
    errors: int
    wall_s: float
    client_cpu_s: float
    scaler_cpu_s: float
    server: dict[str, float]
    poll: dict[str, float]
    pod_errors: float


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    where = pin_self(CLIENT_CORE)
    noise = cpu_noise([SCALER_CORE, CLIENT_CORE])
    outcomes = []
    for workers in args.poll_workers:
        outcomes += measure_target(
            args.pods, scenarios(args, workers, control=False), args, workers
        )
    if args.control:
        outcomes += measure_target(1, scenarios(args, 0, control=True), args, 0)
    print_report(outcomes, args, where, noise)


def scenarios(args: argparse.Namespace, workers: int, *, control: bool) -> list[Scenario]:
    many, rate, duration, pods = args.callers, args.rate, args.duration, args.pods
    polled = f"{workers} poll worker(s)" if workers else "polled in-process"
    if control:
        return [
            Scenario(f"control: 1 pod, {polled}, {many} callers, paced", 1, many, rate, duration)
        ]
    return [
        Scenario(f"{pods} pods, {polled}, {many} callers, closed loop", pods, many, None, duration),
        Scenario(f"{pods} pods, {polled}, {many} callers, paced", pods, many, rate, duration),
        Scenario(f"{pods} pods, {polled}, 1 caller, closed loop", pods, 1, None, duration),
    ]


def measure_target(
    pods_count: int, runs: list[Scenario], args: argparse.Namespace, workers: int
) -> list[Outcome]:
    """A fresh scaler and fake pods; the runs one after the other against them."""
    bound_s = 60 + (len(runs) + 1) * (args.duration + args.warmup)
    with (
        fake_pods(
            pods_count, demand_per_s=DEMAND_PER_POD, seconds=bound_s, core=CLIENT_CORE
        ) as pods,
        scaler_process(
            core=SCALER_CORE, poll_interval_s=1.0, pod_timeout_s=0.25, poll_workers=workers
        ) as scaler,
    ):
        request = make_request(pods.ports)
        return uvloop.run(run_all(scaler, request, runs, args))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench scaler_rpc", description=__doc__)
    parser.add_argument("--pods", type=int, default=1000, help="pods of the polled target")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up calls")
    parser.add_argument("--callers", type=int, default=50, help="concurrent callers")
    parser.add_argument("--rate", type=float, default=500.0, help="total calls/s, paced run")
    parser.add_argument("--channels", type=int, default=1, help="gRPC channels, callers share")
    parser.add_argument(
        "--no-control", dest="control", action="store_false", help="skip the 1-pod control run"
    )
    parser.add_argument(
        "--poll-workers",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[0, 1],
        help="the scaler's --poll-workers, one scaler after the other (default 0,1: in-process, "
        "then one worker beside the main process on the scaler's core)",
    )
    parser.add_argument("--quick", action="store_true", help="4 s runs, 1 s warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 4.0, 1.0
    return args


def make_request(ports: list[int]) -> pb.GetMetricsRequest:
    metadata = endpoints_metadata(
        ports, scalerAddress="rating-scaler.edge.svc.cluster.local:6000", window="5"
    )
    return metrics_request(scaled_object_ref("rating-api", "edge", metadata), "openclaw-demand")


async def run_all(
    scaler: ScalerProcess,
    request: pb.GetMetricsRequest,
    runs: list[Scenario],
    args: argparse.Namespace,
) -> list[Outcome]:
    clients = [KedaClient.insecure(scaler.service.grpc_target) for _ in range(args.channels)]
    try:
        await wait_for_demand(clients[0], request, runs[0].pods)
        warm = Scenario("warm-up", runs[0].pods, args.callers, None, args.warmup)
        await run(warm, clients, request, scaler)
        return [await run(scenario, clients, request, scaler) for scenario in runs]
    finally:
        for client in clients:
            await client.close()


async def wait_for_demand(client: KedaClient, request: pb.GetMetricsRequest, pods: int) -> None:
    """The first call starts the target's poller; wait until all pods' demand shows."""
    expected = pods * DEMAND_PER_POD
    deadline = time.monotonic() + 15
    value = 0.0
    while time.monotonic() < deadline:
        try:
            response = await client.get_metrics(request, timeout_s=5)
            value = response.metricValues[0].metricValueFloat
        except grpc.aio.AioRpcError:
            value = 0.0
        if abs(value - expected) < 0.05 * expected:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"GetMetrics says {value:.1f}, expected about {expected:.0f}: pods not seen")


async def run(
    scenario: Scenario,
    clients: list[KedaClient],
    request: pb.GetMetricsRequest,
    scaler: ScalerProcess,
) -> Outcome:
    before = await asyncio.to_thread(scaler.get, "/metrics")
    scaler_cpu, client_cpu = scaler.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    deadline = started + scenario.duration_s
    results = await asyncio.gather(
        *(
            caller(clients[index % len(clients)], request, scenario, index, deadline)
            for index in range(scenario.callers)
        )
    )
    wall_s = time.perf_counter() - started
    client_cpu_s, scaler_cpu_s = time.process_time() - client_cpu, scaler.cpu_seconds() - scaler_cpu
    after = await asyncio.to_thread(scaler.get, "/metrics")
    calls = sorted(call for calls, _ in results for call in calls)
    errors = sum(errors for _, errors in results)
    server = histogram_delta(before, after, HISTOGRAM, "GetMetrics")
    poll = histogram_delta(before, after, POLL_HISTOGRAM, None)
    pod_errors = counter(after, POD_ERRORS) - counter(before, POD_ERRORS)
    latencies, sent_at = [latency for _, latency in calls], [sent for sent, _ in calls]
    return Outcome(
        scenario,
        latencies,
        sent_at,
        errors,
        wall_s,
        client_cpu_s,
        scaler_cpu_s,
        server,
        poll,
        pod_errors,
    )


async def caller(
    client: KedaClient,
    request: pb.GetMetricsRequest,
    scenario: Scenario,
    index: int,
    deadline: float,
) -> tuple[list[tuple[float, float]], int]:
    """(sent at, latency) of each answered call, and how many failed."""
    calls: list[tuple[float, float]] = []
    errors = 0
    period_s = scenario.callers / scenario.rate_per_s if scenario.rate_per_s else 0.0
    next_at = time.perf_counter() + period_s * index / scenario.callers  # spread the callers
    while (now := time.perf_counter()) < deadline:
        if period_s:
            if next_at > now:
                await asyncio.sleep(next_at - now)
            next_at += period_s
        sent = time.perf_counter()
        try:
            response = await client.get_metrics(request, timeout_s=5)
        except grpc.aio.AioRpcError:
            errors += 1
            continue
        calls.append((sent, time.perf_counter() - sent))
        if not response.metricValues or response.metricValues[0].metricValueFloat <= 0:
            errors += 1
    return calls, errors


def histogram_delta(before: bytes, after: bytes, name: str, method: str | None) -> dict[str, float]:
    """Cumulative bucket counts (le -> count) of one histogram, `after` minus `before`."""
    old, new = buckets(before, name, method), buckets(after, name, method)
    return {le: new[le] - old.get(le, 0.0) for le in new}


def buckets(text: bytes, name: str, method: str | None) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if method is not None and sample.labels.get("method") != method:
                continue
            if sample.name == f"{name}_bucket":
                found[sample.labels["le"]] = found.get(sample.labels["le"], 0.0) + sample.value
            elif sample.name in (f"{name}_sum", f"{name}_count"):
                key = sample.name.rsplit("_", 1)[1]
                found[key] = found.get(key, 0.0) + sample.value
    return found


def counter(text: bytes, name: str) -> float:
    """The sum of a counter over all its label sets."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if sample.name == f"{name}_total"
    )


def bucket_quantile(delta: dict[str, float], q: float) -> str:
    """The bucket bound below which a share q of the observations fall, as '<= x ms'."""
    count = delta.get("count", 0.0)
    if not count:
        return "-"
    bounds = sorted((float(le), n) for le, n in delta.items() if le not in ("sum", "count"))
    for bound, cumulative in bounds:
        if cumulative >= q * count:
            return f"≤ {bound * 1e3:g}" if bound != float("inf") else "> last bucket"
    return "-"


def print_report(outcomes: list[Outcome], args: argparse.Namespace, where: str, noise: str) -> None:
    print(
        f"{machine()}. Scaler (`python -m scaler --poll-interval 1 --pod-timeout 0.25`) on core "
        f"{SCALER_CORE}; client ({args.channels} grpc.aio channel(s), uvloop) on {where}, with "
        f"the fake pods' process. GetMetrics of one ScaledObject naming {args.pods} pods (the "
        f"control: 1 pod, on a fresh scaler); {args.warmup:g} s warm-up, then each run "
        f"{args.duration:g} s; paced runs at {args.rate:g} calls/s in total. CPU noise just "
        f"before: {noise}.\n"
    )
    header = [
        "run", "calls/s", "p50 ms", "p99 ms", "max ms", "> 5 ms", "errors", "client CPU",
        "scaler CPU", "server p50 ms", "server p99 ms", "server ≤ 5 ms",
    ]  # fmt: skip
    rows = [outcome_row(outcome) for outcome in outcomes]
    print(table(header, rows, [False, *[True] * (len(header) - 1)]))
    print(
        "\nclient/scaler CPU: share of one core over the run. server columns: the scaler's own "
        f"histogram ({HISTOGRAM}), bucket bounds, time inside the handler only.\n"
    )
    for outcome in outcomes:
        notes(outcome)
    verdict(outcomes, args.pods)


def notes(outcome: Outcome) -> None:
    name, poll = outcome.scenario.name, outcome.poll
    if poll.get("count"):
        mean_ms = poll["sum"] / poll["count"] * 1e3
        print(
            f"- {name}: {poll['count']:.0f} poll cycles of {outcome.scenario.pods} pod(s) "
            f"meanwhile, mean {mean_ms:.1f} ms each (the scaler's poll_duration histogram), "
            f"{outcome.pod_errors:.0f} failed pod polls"
        )
    busy = outcome.client_cpu_s / outcome.wall_s
    if busy > BUSY_CLIENT:
        print(f"- {name}: the client used {busy:.0%} of its core; its queueing is in the figures")
    if outcome.scenario.rate_per_s:
        seconds, total = phase_locked_seconds(outcome)
        print(
            f"- {name}: in {seconds} of {total} s, calls over 5 ms came in the same "
            f"{2000 // PHASE_BINS} ms of the 1 s poll period (a stall at each poll cycle; "
            "preemption by other tenants falls at random phases)"
        )


def phase_locked_seconds(outcome: Outcome) -> tuple[int, int]:
    """In how many whole seconds slow calls fell in one phase window (two bins) of the poll
    period, for the window where that happened most; and how many seconds the run had."""
    slow = [sent for sent, s in zip(outcome.sent_at, outcome.latencies_s, strict=True) if s > 5e-3]
    total = int(outcome.scenario.duration_s)
    best = 0
    for first in range(PHASE_BINS):
        window = {first, (first + 1) % PHASE_BINS}
        seconds = {int(sent) for sent in slow if int(sent % 1.0 * PHASE_BINS) in window}
        best = max(best, len(seconds))
    return min(best, total), total


def outcome_row(outcome: Outcome) -> list[str]:
    latencies = outcome.latencies_s or [float("nan")]
    server = outcome.server
    under_5ms = server.get("0.005", 0.0) / server["count"] if server.get("count") else 0.0
    over_5ms = sum(latency > TARGET_P99_MS / 1e3 for latency in latencies) / len(latencies)
    return [
        outcome.scenario.name,
        f"{len(outcome.latencies_s) / outcome.wall_s:,.0f}",
        f"{statistics.median(latencies) * 1e3:.2f}",
        f"{percentile(latencies, 99) * 1e3:.2f}",
        f"{max(latencies) * 1e3:.1f}",
        f"{over_5ms:.2%}",
        str(outcome.errors),
        f"{outcome.client_cpu_s / outcome.wall_s:.0%}",
        f"{outcome.scaler_cpu_s / outcome.wall_s:.0%}",
        bucket_quantile(server, 0.5),
        bucket_quantile(server, 0.99),
        f"{under_5ms:.2%}",
    ]


def verdict(outcomes: list[Outcome], pods: int) -> None:
    print()
    for outcome in outcomes:
        if outcome.scenario.pods != pods or outcome.scenario.callers == 1:
            continue
        p99_ms = percentile(outcome.latencies_s, 99) * 1e3
        ok = p99_ms < TARGET_P99_MS and outcome.errors == 0
        print(
            f"{outcome.scenario.name}: client p99 **{p99_ms:.2f} ms** at "
            f"{len(outcome.latencies_s) / outcome.wall_s:,.0f} calls/s: "
            f"{'meets' if ok else 'misses'} the target (p99 < {TARGET_P99_MS:g} ms)"
        )

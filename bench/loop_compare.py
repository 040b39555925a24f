"""Seconds until each path reports a load step: the scaler read directly, and Prometheus.

The paths' own delays, before any HPA, with the demo's own parts (`demo.triggers`,
`demo.load_control`, `demo.prometheus`, on `harness`): real processes on 127.0.0.1, namely 3
rating-api pods (bucket of 20 tokens refilled at 10/s), the rating-scaler
(`--poll-interval 1`, trigger `window` 5 as in manifests/), a Debian Prometheus
scraping the pods every 15 s, and the demo's load generator sending round robin over
the pods. Each repetition waits until both paths report under 5 %
of the step, then 0, 1/3 or 2/3 of (scrape interval + 1 s) more, so that the steps
land at spread points of both the scrape cycle and the scaler's poll cycle; it
starts the step (4.1x the pods' total refill: 123 req/s), reads both paths
every 100 ms (the scaler as KEDA calls it: GetMetricSpec, GetMetrics, IsActive; the
Prometheus HTTP API with `sum(rate(openclaw_rating_api_requests_total[1m]))`), and
stops the load once both have reported 85 % of the step. Detection time: seconds from
the load's start to the first such reading. Where the step lands in those cycles moves
the figures by up to one interval, hence the spread, the repetitions and the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench._scaler_procs import cpu_noise, table
from demo.load_control import LoadGenerator
from demo.orchestrate import Settings
from demo.prometheus import start_prometheus
from demo.triggers import DEMAND_QUERY, SCALED_OBJECT_METADATA, DirectTrigger, PrometheusTrigger
from harness import HOST, Child, RatingApi, RatingScaler, start_async, wait_http_ok_async
from harness.group import Group
from harness.interrupt import Interrupted, until_signal
from harness.machine import machine

DEMO = Settings()  # the demo's pods, buckets and step
BUCKET_CAPACITY = 2 * DEMO.bucket_rate
STEP_PER_S = round(DEMO.step * DEMO.pods * DEMO.bucket_rate)
WINDOW_S = SCALED_OBJECT_METADATA["window"]
REACHED_SHARE = 0.85
QUIET_SHARE = 0.05
READ_EVERY_S = 0.1
QUIET_TIMEOUT_S = 240.0
TARGET_DIRECT_S = 2.0
TARGET_RATIO = 10.0


@dataclass(frozen=True)
class Paths:
    direct: DirectTrigger
    prometheus: PrometheusTrigger
    endpoints: list[str]  # the pods' admin addresses

    async def demand(self) -> tuple[float | None, float | None]:
        """(direct, Prometheus) demand in requests/s now; None where there is no answer."""
        direct, prometheus = await asyncio.gather(
            self.direct.read(self.endpoints), self.prometheus.read()
        )
        return direct.value, prometheus.value


@dataclass(frozen=True)
class Repetition:
    direct_s: float | None  # None: not reached within the hold
    prometheus_s: float | None
    direct_peak_per_s: float  # the most each path reported, to tell why when it is None
    prometheus_peak_per_s: float


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("needs `prometheus` on PATH: `make system-deps` installs it")
    noise = cpu_noise(sorted(os.sched_getaffinity(0))[:2])
    try:
        repetitions = asyncio.run(until_signal(run(args, binary)))
    except Interrupted as stop:
        raise SystemExit(128 + stop.signum) from None
    print_report(repetitions, args, noise)


async def run(args: argparse.Namespace, binary: str) -> list[Repetition]:
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as work:
        children = Group(Path(work) / "logs")
        try:
            async with started(children, Path(work), binary, args) as (paths, pods):
                repetitions = []
                for index in range(args.repeats):
                    await wait_quiet(paths)
                    await asyncio.sleep(spread_delay_s(index, args.repeats, args.scrape_interval))
                    load = LoadGenerator(children, Path(work), ["direct"])
                    load.publish("direct", [f"{HOST}:{pod.ports['public']}" for pod in pods])
                    started_at = time.monotonic()
                    child = load.start([STEP_PER_S] * int(args.hold), started_at)
                    repetitions.append(await detect(paths, started_at, args.hold))
                    await child.stop_async()
                return repetitions
        finally:
            children.stop_all()


@asynccontextmanager
async def started(
    children: Group, work_dir: Path, binary: str, args: argparse.Namespace
) -> AsyncIterator[tuple[Paths, list[Child]]]:
    """The demo's 3 pods, the scaler, and Prometheus scraping the pods."""
    pods = []
    for index in range(DEMO.pods):
        service = RatingApi(pod_name=f"rating-api-{index}", bucket_rate=DEMO.bucket_rate,
                            bucket_capacity=BUCKET_CAPACITY, log_level="warning")  # fmt: skip
        pods.append(await start_async(service, work_dir / "logs" / f"{service.name}.log"))
        children.started.append(pods[-1])
    scaler = RatingScaler(poll_interval_s=1.0, pod_timeout_s=0.25, log_level="warning")
    scaler_child = children.spawn("rating-scaler", scaler.argv(), scaler.ports)
    await wait_http_ok_async(scaler.ready_urls[0], scaler_child)
    prometheus = await start_prometheus(
        children, binary, work_dir=work_dir, scrape_interval_s=args.scrape_interval
    )
    endpoints = [f"{HOST}:{pod.ports['admin']}" for pod in pods]
    prometheus.set_targets(endpoints)
    async with AsyncExitStack() as stack:
        paths = Paths(
            DirectTrigger(scaler.grpc_target), PrometheusTrigger(prometheus.url), endpoints
        )
        stack.push_async_callback(paths.direct.close)
        stack.push_async_callback(paths.prometheus.close)
        yield paths, pods


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench loop_compare", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="load steps (default 3)")
    parser.add_argument(
        "--hold", type=float, default=100.0, help="most seconds one step lasts (default 100)"
    )
    parser.add_argument(
        "--scrape-interval", type=float, default=15.0, help="Prometheus' (default 15 s)"
    )
    parser.add_argument("--quick", action="store_true", help="one step")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 1
    return args


def spread_delay_s(index: int, repeats: int, scrape_interval_s: float) -> float:
    """Delays from the quiet reading to the step that spread the steps evenly over both
    cycles: Prometheus' scrapes (quiet shows right after one) and the scaler's 1 s polls."""
    return index / repeats * (scrape_interval_s + 1.0)


async def wait_quiet(paths: Paths) -> None:
    """Until both paths report (Prometheus needs two scrapes) less than 5 % of the step."""
    quiet = QUIET_SHARE * STEP_PER_S
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while time.monotonic() < deadline:
        direct, prometheus = await paths.demand()
        if direct is not None and prometheus is not None and max(direct, prometheus) < quiet:
            return
        await asyncio.sleep(READ_EVERY_S)
    raise SystemExit(f"the paths did not fall under {quiet:g}/s within {QUIET_TIMEOUT_S:g} s")


async def detect(paths: Paths, started: float, hold_s: float) -> Repetition:
    """Read both paths every 100 ms until both reached 85 % of the step, or `hold_s`."""
    reached: list[float | None] = [None, None]
    peaks = [0.0, 0.0]
    threshold = REACHED_SHARE * STEP_PER_S
    tick = 0
    while None in reached and time.monotonic() - started < hold_s:
        for index, value in enumerate(await paths.demand()):
            if value is None:
                continue
            peaks[index] = max(peaks[index], value)
            if reached[index] is None and value >= threshold:
                reached[index] = time.monotonic() - started
        tick += 1
        await asyncio.sleep(max(0.0, started + tick * READ_EVERY_S - time.monotonic()))
    return Repetition(reached[0], reached[1], peaks[0], peaks[1])


def median(values: list[float | None]) -> float | None:
    """The median, or None when any value is missing (a step that was never detected)."""
    known = [value for value in values if value is not None]
    return statistics.median(known) if known and len(known) == len(values) else None


def shown(value: float | None, unit: str = " s", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def detected(value_s: float | None, peak_per_s: float, digits: int) -> str:
    return (
        f"not reached, peak {peak_per_s:.0f}/s"
        if value_s is None
        else shown(value_s, digits=digits)
    )


def ratio(slow: float | None, fast: float | None) -> float | None:
    return None if slow is None or fast is None or fast <= 0 else slow / fast


def print_report(repetitions: list[Repetition], args: argparse.Namespace, noise: str) -> None:
    print(
        f"{machine()}. {DEMO.pods} rating-api pods (bucket {BUCKET_CAPACITY:g} tokens, "
        f"{DEMO.bucket_rate:g}/s each), step 0 -> {STEP_PER_S:g} req/s ({DEMO.step:g}x their "
        f"refill) from the demo's load generator, round robin over the pods; scaler "
        f"`--poll-interval 1`, trigger `window` "
        f"{WINDOW_S}; Prometheus {prometheus_version()} scraping every "
        f"{args.scrape_interval:g} s, queried with `{DEMAND_QUERY}`; both read every "
        f"{READ_EVERY_S * 1e3:.0f} ms. Detection: first reading >= {REACHED_SHARE:.0%} of the "
        f"step ({REACHED_SHARE * STEP_PER_S:g}/s), in seconds from the load's start. CPU noise "
        f"just before: {noise}.\n"
    )

    def row(name: str, direct: float | None, prometheus: float | None) -> list[str]:
        times = ratio(prometheus, direct)
        return [name, shown(direct, digits=2), shown(prometheus), shown(times, "x", 0)]

    rows = [row(str(i), r.direct_s, r.prometheus_s) for i, r in enumerate(repetitions, start=1)]
    direct = median([r.direct_s for r in repetitions])
    prometheus = median([r.prometheus_s for r in repetitions])
    medians_ratio = ratio(prometheus, direct)
    rows.append(
        [f"**{cell}**" for cell in row("median (ratio of the medians)", direct, prometheus)]
    )
    header = ["step", "direct path", "Prometheus path", "Prometheus / direct"]
    print(table(header, rows, [True] * len(header)))
    verdict(direct, medians_ratio)


def verdict(direct: float | None, medians_ratio: float | None) -> None:
    def meets(ok: Callable[[float], bool], value: float | None) -> str:
        return "meets" if value is not None and ok(value) else "misses"

    fast = meets(lambda value: value <= TARGET_DIRECT_S, direct)
    sooner = meets(lambda value: value >= TARGET_RATIO, medians_ratio)
    print(
        f"\nMedian detection: direct {shown(direct, digits=2)} ({fast} the target of "
        f"<= {TARGET_DIRECT_S:g} s), {shown(medians_ratio, 'x', 0)} sooner than Prometheus "
        f"({sooner} the target of >= {TARGET_RATIO:g}x)."
    )


def prometheus_version() -> str:
    binary = shutil.which("prometheus") or "prometheus"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    words = (out.stdout or out.stderr).split()
    return words[2] if len(words) > 2 else "(unknown version)"

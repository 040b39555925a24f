"""Seconds until each path reports a load step: the scaler read directly, and Prometheus.

The demo's comparison in a shorter form, with the demo's own parts (`demo.processes`,
`demo.load`, `demo.readers`): real processes on 127.0.0.1, namely 3 rating-api pods
(bucket of 20 tokens refilled at 10/s), the rating-scaler (`--poll-interval 1`,
trigger `window` 5 as in manifests/), a Debian Prometheus scraping the pods every
15 s, and one `hey` per pod. Each repetition waits until both paths report under 5 %
of the step, then 0, 1/3 or 2/3 of (scrape interval + 1 s) more, so that the steps
land at spread points of both the scrape cycle and the scaler's poll cycle; it
starts the step (4.1x the pods' total refill: 123 req/s), reads both paths
every 100 ms (the scaler as KEDA calls it: GetMetricSpec, GetMetrics, IsActive; the
Prometheus HTTP API with `sum(rate(openclaw_rating_api_requests_total[1m]))`), and
stops the load once both have reported 85 % of the step. Detection time: seconds from
starting `hey` to the first such reading. Where the step lands in those cycles moves
the figures by up to one interval, hence the spread, the repetitions and the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench._scaler_procs import cpu_noise, machine, table
from demo.load import start_load
from demo.processes import Children, interruptible, start_pods, start_prometheus, start_scaler
from demo.readers import DEMAND_QUERY, DirectPath, PrometheusPath
from demo.run import TARGET_UTILIZATION, WINDOW_S, Settings
from demo.series import REACHED_SHARE

DEMO = Settings()  # the demo's pods, buckets and step
STEP_PER_S = DEMO.step_per_s
QUIET_SHARE = 0.05
READ_EVERY_S = 0.1
QUIET_TIMEOUT_S = 240.0
TARGET_DIRECT_S = 2.0
TARGET_RATIO = 10.0


@dataclass(frozen=True)
class Paths:
    direct: DirectPath
    prometheus: PrometheusPath

    def demand(self) -> tuple[float | None, float | None]:
        """(direct, Prometheus) demand in requests/s now; None where there is no answer."""
        direct = self.direct.read()
        return (None if direct is None else direct.demand_per_s), self.prometheus.query(
            DEMAND_QUERY
        )


@dataclass(frozen=True)
class Repetition:
    direct_s: float | None  # None: not reached within the hold
    prometheus_s: float | None
    direct_peak_per_s: float  # the most each path reported, to tell why when it is None
    prometheus_peak_per_s: float


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    binary = shutil.which("prometheus")
    if binary is None or shutil.which("hey") is None:
        raise SystemExit("needs `prometheus` and `hey` on PATH: `make system-deps` installs them")
    noise = cpu_noise(sorted(os.sched_getaffinity(0))[:2])
    with interruptible(), ExitStack() as stack:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-loop-")))
        children = stack.enter_context(Children(work_dir / "logs"))
        pods = start_pods(
            children, DEMO.pods, bucket_capacity=DEMO.bucket_capacity, bucket_rate=DEMO.bucket_rate
        )
        scaler = start_scaler(children, poll_interval_s=1.0)
        prometheus = start_prometheus(
            children,
            binary,
            targets=[pod.admin_address for pod in pods],
            scrape_interval_s=args.scrape_interval,
            work_dir=work_dir,
        )
        direct = DirectPath(scaler, pods, window_s=WINDOW_S, target_utilization=TARGET_UTILIZATION)
        stack.callback(direct.close)
        paths = Paths(direct, PrometheusPath(prometheus))
        repetitions = []
        for index in range(args.repeats):
            wait_quiet(paths)
            time.sleep(spread_delay_s(index, args.repeats, args.scrape_interval))
            started = time.monotonic()
            load = start_load(children, pods, STEP_PER_S, args.hold)
            repetitions.append(detect(paths, started, args.hold))
            children.stop(load)
    print_report(repetitions, args, noise)


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


def wait_quiet(paths: Paths) -> None:
    """Until both paths report (Prometheus needs two scrapes) less than 5 % of the step."""
    quiet = QUIET_SHARE * STEP_PER_S
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while time.monotonic() < deadline:
        direct, prometheus = paths.demand()
        if direct is not None and prometheus is not None and max(direct, prometheus) < quiet:
            return
        time.sleep(READ_EVERY_S)
    raise SystemExit(f"the paths did not fall under {quiet:g}/s within {QUIET_TIMEOUT_S:g} s")


def detect(paths: Paths, started: float, hold_s: float) -> Repetition:
    """Read both paths every 100 ms until both reached 85 % of the step, or `hold_s`."""
    reached: list[float | None] = [None, None]
    peaks = [0.0, 0.0]
    threshold = REACHED_SHARE * STEP_PER_S
    tick = 0
    while None in reached and time.monotonic() - started < hold_s:
        for index, value in enumerate(paths.demand()):
            if value is None:
                continue
            peaks[index] = max(peaks[index], value)
            if reached[index] is None and value >= threshold:
                reached[index] = time.monotonic() - started
        tick += 1
        time.sleep(max(0.0, started + tick * READ_EVERY_S - time.monotonic()))
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
        f"{machine()}. {DEMO.pods} rating-api pods (bucket {DEMO.bucket_capacity:g} tokens, "
        f"{DEMO.bucket_rate:g}/s each), step 0 -> {STEP_PER_S:g} req/s ({DEMO.step:g}x their "
        f"refill) from one `hey` per pod; scaler `--poll-interval 1`, trigger `window` "
        f"{WINDOW_S}; Prometheus {prometheus_version()} scraping every "
        f"{args.scrape_interval:g} s, queried with `{DEMAND_QUERY}`; both read every "
        f"{READ_EVERY_S * 1e3:.0f} ms. Detection: first reading >= {REACHED_SHARE:.0%} of the "
        f"step ({REACHED_SHARE * STEP_PER_S:g}/s), in seconds from starting hey. CPU noise "
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

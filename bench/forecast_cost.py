"""What the forecast costs one target: CPU per second of demand, and memory.

Replays 30 minutes of synthetic agent bursts (a quiet 12/s, bursts of 6-10x for 20-40 s
every P s, P from 120 to 200 s, +-5 % each) through `scaler.forecast.DemandForecast`
one second at a time, as a poller records them, asking for the forecast once a
second as KEDA's reads would (more often than KEDA does). Reports CPU per target per
second (the period search every 15 s included), the slowest single period search,
the bytes one target's forecast holds, and how close the period found is to the
bursts' mean interval.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
import tracemalloc
from collections.abc import Sequence

from bench._scaler_procs import table
from harness.machine import machine
from scaler.forecast import HISTORY_S, DemandForecast, find_pattern

SEEDS = (1, 2, 3, 4, 5)


def agent_load(seed: int, seconds: int = HISTORY_S) -> tuple[list[float], float]:
    """Demand per second, and the bursts' mean interval."""
    rng = random.Random(seed)
    period = rng.uniform(120, 200)
    per_s, starts, at = [12.0] * seconds, [], rng.uniform(10, 60)
    while at < seconds:
        start, length, times = int(at), rng.randint(20, 40), rng.uniform(6, 10)
        starts.append(start)
        for second in range(start, min(seconds, start + length)):
            per_s[second] = 12.0 * times
        at += period * rng.uniform(0.95, 1.05)
    intervals = [b - a for a, b in itertools.pairwise(starts)]
    return [v * rng.uniform(0.9, 1.1) for v in per_s], statistics.mean(intervals)


def measure(seed: int) -> list[str]:
    per_s, interval = agent_load(seed)
    forecast = DemandForecast()
    started = time.process_time()
    for second, value in enumerate(per_s):
        forecast.record(float(second), value)
        forecast.forecast(30.0)
    cpu_us = (time.process_time() - started) / len(per_s) * 1e6
    search_started = time.process_time()
    pattern = find_pattern(forecast.history.series())
    search_ms = (time.process_time() - search_started) * 1e3
    found = "none" if pattern is None else f"{pattern.period_s} s"
    error = "-" if pattern is None else f"{(pattern.period_s / interval - 1) * 100:+.1f} %"
    return [f"seed {seed}", f"{interval:.1f} s", found, error, f"{cpu_us:.0f}", f"{search_ms:.1f}"]


def state_bytes() -> int:
    """Bytes allocated by one target's forecast, full history and pattern."""
    per_s, _ = agent_load(1)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    forecast = DemandForecast()
    for second, value in enumerate(per_s):
        forecast.record(float(second), value)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench forecast_cost", description=__doc__)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    args = parser.parse_args(list(argv))
    print(f"{machine()}.\n")
    header = ["load", "bursts' mean interval", "period found", "error",
              "CPU us per target per s", "one period search, ms"]  # fmt: skip
    rows = [measure(seed) for seed in args.seeds]
    print(table(header, rows, [False, *[True] * (len(header) - 1)]))
    print(f"\nOne target's forecast holds {state_bytes():,} bytes (tracemalloc), "
          f"{DemandForecast().state_bytes:,} by its own count.")  # fmt: skip

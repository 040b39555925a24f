"""Cost of one token-bucket acquire, beside the `limits` library's moving window.

Both limiters are asked in a tight loop, same run, same policy, with the real clock
(`time.monotonic` for ours; `limits` reads `time.time` itself):

- "refusing": the default pod, 100 tokens refilled at 50/s (`limits`: 100 per 2 s),
  hammered far past its rate, so after the first 100 nearly every call is refused,
  which is what a pod does under a burst;
- "granting": a limit so high that every call is let through (`limits` keeps every hit
  of its window, so this run is shorter to keep its list small).

Repeats of the two alternate, so that other work on the machine hits both alike. The
figures are ns per call, the loop included: the median, and the best repeat, which is
the closest to the cost on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.bucket import TokenBucket

Acquire = Callable[[], bool]
TARGET_NS = 300
TARGET_SPEEDUP = 10


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench bucket_cost", description=__doc__)
    parser.add_argument(
        "--calls", type=int, default=200_000, help="calls per repeat (default 200000)"
    )
    parser.add_argument("--repeats", type=int, default=11, help="repeats (default 11)")
    args = parser.parse_args(argv)
    rows = [
        ("refusing (100 tokens, 50/s)", ours_refusing, limits_refusing, args.calls),
        ("granting (no limit reached)", ours_granting, limits_granting, args.calls // 10),
    ]
    print(f"ns per call, loop included; {args.repeats} alternating repeats: median (best).\n")
    print("| case | ours: TokenBucket | limits: moving window | limits / ours (medians) |")
    print("|---|---:|---:|---:|")
    for name, make_ours, make_limits, calls in rows:
        ours_ns, limits_ns = [], []
        for _ in range(args.repeats):
            ours_ns.append(ns_per_call(make_ours(), calls))
            limits_ns.append(ns_per_call(make_limits(), calls))
        ours, limits = statistics.median(ours_ns), statistics.median(limits_ns)
        print(
            f"| {name} | {ours:,.0f} ({min(ours_ns):,.0f}) | {limits:,.0f} ({min(limits_ns):,.0f}) "
            f"| {limits / ours:,.1f}x |"
        )
    print(f"\nTargets: ours <= {TARGET_NS} ns and >= {TARGET_SPEEDUP}x faster than limits.")


def ns_per_call(acquire: Acquire, calls: int) -> float:
    started_ns = time.perf_counter_ns()
    for _ in range(calls):
        acquire()
    return (time.perf_counter_ns() - started_ns) / calls


def ours_refusing() -> Acquire:
    return TokenBucket(capacity=100, refill_per_s=50, clock=time.monotonic).try_acquire


def ours_granting() -> Acquire:
    return TokenBucket(capacity=1e12, refill_per_s=1e12, clock=time.monotonic).try_acquire


def limits_refusing() -> Acquire:
    return _limits_acquire(RateLimitItemPerSecond(100, 2))


def limits_granting() -> Acquire:
    return _limits_acquire(RateLimitItemPerSecond(10**9, 1))


def _limits_acquire(item: RateLimitItemPerSecond) -> Acquire:
    limiter = MovingWindowRateLimiter(MemoryStorage())

    def acquire() -> bool:
        return bool(limiter.hit(item, "pod"))

    return acquire

"""`python -m demo`: the autoscaling loop on this machine, both paths side by side.

Starts rating pods, the rating-scaler (static `endpoints`) and a real Prometheus
scraping the pods, all on 127.0.0.1; drives a bounded burst of real HTTP load with
`hey`; reads the scaler over gRPC and Prometheus over its HTTP API every second;
shows both live, then writes a CSV, a chart and a summary. Every process it starts
is stopped when it ends, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from demo.processes import Interrupted, interruptible
from demo.run import Settings, run


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    if shutil.which("hey") is None:
        print("hey is not installed: `make system-deps` installs it", file=sys.stderr)
        return 2
    try:
        with interruptible():
            run(settings)
    except Interrupted as stop:
        print(f"\ninterrupted ({stop}): every process it started was stopped", flush=True)
        return 128 + stop.signum
    return 0


def parse_args(argv: list[str] | None) -> Settings:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=defaults.duration_s,
        metavar="SECONDS",
        help="seconds in all, 16-900 (default %(default)g): idle 1/8, step 5/8, idle 2/8",
    )
    parser.add_argument(
        "--step",
        type=float,
        default=defaults.step,
        metavar="TIMES",
        help="the step's load as a multiple of the pods' total refill rate (default %(default)g)",
    )
    parser.add_argument(
        "--bucket-rate",
        type=float,
        default=defaults.bucket_rate,
        metavar="PER_S",
        help="each pod's refill rate, tokens/s (default %(default)g); capacity is twice that",
    )
    parser.add_argument(
        "--scrape-interval",
        type=float,
        default=defaults.scrape_interval_s,
        metavar="SECONDS",
        help="Prometheus' scrape interval (default %(default)g)",
    )
    parser.add_argument(
        "--no-prometheus",
        action="store_true",
        help="show the direct path only, even when Prometheus is installed",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=defaults.out_dir,
        metavar="DIR",
        help="where the CSV, chart, summary and logs go (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if not 16 <= args.duration <= 900:
        parser.error("--duration: 16 to 900 seconds")
    if not 1 < args.step <= 10:
        parser.error("--step: above 1 (more than the pods can take) and at most 10")
    if not 0.5 <= args.bucket_rate <= 100:
        parser.error("--bucket-rate: 0.5 to 100 tokens/s")
    if not 1 <= args.scrape_interval <= 60:
        parser.error("--scrape-interval: 1 to 60 seconds")
    binary = None if args.no_prometheus else shutil.which("prometheus")
    return Settings(
        duration_s=args.duration,
        step=args.step,
        bucket_rate=args.bucket_rate,
        scrape_interval_s=args.scrape_interval,
        prometheus_binary=binary,
        out_dir=args.out,
    )


if __name__ == "__main__":
    sys.exit(main())

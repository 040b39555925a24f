"""`python -m soak [--chaos]`: the long soak (or chaos) run; prints the figures as markdown.

Exits 0 when every check passed, 1 when one failed. Everything runs on 127.0.0.1 and
stops by itself after `--duration` seconds (plus start-up and shut-down).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from soak.runner import run
from soak.settings import Settings


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    add = parser.add_argument
    add("--chaos", action="store_true", help="kill, restart, freeze and slow pods meanwhile")
    add("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    add("--warmup", type=float, default=60.0, help="seconds before memory is compared (60)")
    add("--seed", type=int, help="seed of the fault schedule (default: random, printed)")
    add("--pods", type=int, default=3, help="rating-api processes (default 3)")
    add("--bucket-rate", type=float, default=50.0, help="each pod's refill, tokens/s (50)")
    add("--load-factor", type=float, default=2.0, help="offered load / total capacity (2)")
    add("--scaled-objects", type=int, default=50, help="ScaledObjects polled KEDA-style (50)")
    add("--max-rss-growth", type=float, default=10.0, help="%% RSS growth allowed (10)")
    add("--max-fd-growth", type=int, default=5, help="open fds growth allowed (5)")
    add("--out", type=Path, help="logs and report directory (out/soak, out/chaos)")
    args = parser.parse_args(argv)
    mode = "chaos" if args.chaos else "soak"
    try:
        return Settings(
            out_dir=args.out or Path("out") / mode,
            duration_s=args.duration,
            warmup_s=args.warmup,
            chaos=args.chaos,
            seed=secrets.randbelow(2**31) if args.seed is None else args.seed,
            pods=args.pods,
            bucket_rate=args.bucket_rate,
            load_factor=args.load_factor,
            scaled_objects=args.scaled_objects,
            max_rss_growth_pct=args.max_rss_growth,
            max_fd_growth=args.max_fd_growth,
        )
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    mode = f"chaos (seed {settings.seed})" if settings.chaos else "soak"
    print(f"soak: {mode}, {settings.duration_s:g} s, logs in {settings.out_dir}/", flush=True)
    outcome = run(settings=settings)
    print(outcome.report, flush=True)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())

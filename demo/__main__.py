"""`python -m demo`: the autoscaling loop closed on this machine, three fleets side by side.

Three fleets of rating pods (real `rating-api` processes on 127.0.0.1) get the same load
from one load generator. Each has an emulated HPA (autoscaling/v2 arithmetic, a sync
every 15 s, the ScaledObject's behavior read from manifests/) fed the way KEDA feeds
it: one fleet by the rating-scaler over gRPC (the direct path), one by a real
Prometheus scraping its pods every 15 s and the query
`sum(rate(openclaw_rating_api_requests_total[1m]))` (the Prometheus path), and the
floor by the load offered at that instant, the limit for any HPA-driven scaler. Pods start
and stop as the HPAs ask, and only ready pods get traffic. Writes a CSV, the pods'
events, a chart and a summary; every process it starts is stopped when it ends, on
Ctrl-C and SIGTERM too, and the kernel stops them if the demo itself is killed.

`--scenario agents`: recurring bursts, and other fleets: the direct path (300 s
scale-down window), `floor-short` (the load offered, a 30 s window) and `forecast` (the
direct path with `forecast: recurring` and the 30 s window).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

from demo.load_control import LoadFailure
from demo.orchestrate import Settings, run
from demo.scenarios import SCENARIOS
from demo.series import FLEET_NAMES, FleetName
from demo.zero import ZeroSettings, run_zero
from harness import StartError
from harness.interrupt import Interrupted, until_signal


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if _zero_asked(argv):
        return main_zero(argv)
    settings = parse_args(argv)
    if settings.needs_prometheus and shutil.which(settings.prometheus_binary) is None:
        print("prometheus is not installed: `make system-deps` installs it", file=sys.stderr)
        return 2
    try:
        asyncio.run(until_signal(run(settings, sys.stdout)))
    except Interrupted as stop:
        print(f"\ninterrupted ({stop}): every process it started was stopped", flush=True)
        return 128 + stop.signum
    except (LoadFailure, StartError, RuntimeError, TimeoutError) as failure:
        print(f"\nthe demo failed: {failure}", flush=True)
        print("every process it started was stopped", flush=True)
        return 1
    return 0


def _zero_asked(argv: list[str]) -> bool:
    return any(
        arg == "--scenario=zero" or (arg == "--scenario" and argv[i + 1 : i + 2] == ["zero"])
        for i, arg in enumerate(argv)
    )


def main_zero(argv: list[str]) -> int:
    """`--scenario zero`: one fleet at zero behind a real rating-activator (demo/zero.py)."""
    parser = argparse.ArgumentParser(prog="python -m demo --scenario zero")
    parser.add_argument("--scenario", choices=("zero",), required=True)
    parser.add_argument(
        "--burst", type=int, default=ZeroSettings.burst_per_s, metavar="PER_S",
        help="the second wake-up's burst, requests/s, 1-200 (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--cooldown", type=float, default=ZeroSettings.cooldown_s, metavar="SECONDS",
        help="KEDA's cooldownPeriod before scaling to 0, 5-300 (default %(default)g)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ZeroSettings.out_dir, metavar="DIR")
    args = parser.parse_args(argv)
    if not 1 <= args.burst <= 200:
        parser.error("--burst: 1 to 200 requests/s")
    if not 5 <= args.cooldown <= 300:
        parser.error("--cooldown: 5 to 300 seconds")
    settings = ZeroSettings(burst_per_s=args.burst, cooldown_s=args.cooldown, out_dir=args.out)
    try:
        asyncio.run(until_signal(run_zero(settings, sys.stdout)))
    except Interrupted as stop:
        print(f"\ninterrupted ({stop}): every process it started was stopped", flush=True)
        return 128 + stop.signum
    except (StartError, RuntimeError, TimeoutError, AssertionError) as failure:
        print(f"\nthe demo failed: {failure}", flush=True)
        return 1
    return 0


def parse_args(argv: list[str] | None) -> Settings:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--scenario",
        choices=(*SCENARIOS, "zero"),
        default=defaults.scenario,
        help="step: idle, then --step times the starting pods' refill; bursts: quiet load "
        "with 3 bursts of 5-10x it; agents: quiet load with 6 bursts of 6-10x it, 20-40 s "
        "long, every P s (P from 120 to 200 s, drawn from --seed, +-5 %%), about 6 x P s in "
        "all (--duration does not apply); zero: one fleet at 0 behind rating-activator, "
        "woken twice (its own flags: --scenario zero --help) (default %(default)s)",
    )
    add(
        "--seed",
        type=int,
        default=defaults.seed,
        metavar="N",
        help="draws the bursts, and the HPAs' first sync with --random-phase (default %(default)s)",
    )
    add(
        "--duration",
        type=int,
        default=defaults.duration_s,
        metavar="SECONDS",
        help="seconds of load, 30-900 (default %(default)s)",
    )
    add(
        "--step",
        type=float,
        default=defaults.step,
        metavar="TIMES",
        help="the step as a multiple of the starting pods' refill (default %(default)g)",
    )
    add(
        "--quiet",
        type=int,
        default=defaults.quiet_per_s,
        metavar="PER_S",
        help="the bursts scenario's quiet load, requests/s (default %(default)s)",
    )
    add(
        "--bucket-rate",
        type=float,
        default=defaults.bucket_rate,
        metavar="PER_S",
        help="each pod's refill, tokens/s; its bucket holds twice that (default %(default)g)",
    )
    add(
        "--hpa-sync",
        "--sync",
        dest="sync",
        type=float,
        default=defaults.sync_s,
        metavar="SECONDS",
        help="the HPAs' sync period, kube-controller-manager's "
        "--horizontal-pod-autoscaler-sync-period (default %(default)g, its default). 15 s: a "
        "rise waits 0 to 15 s, 7.5 s on average, for the sync that scales; 5 s, a cluster "
        "tuned to sync more often: 0 to 5 s, 2.5 s on average, for three times the metric "
        "reads",
    )
    add(
        "--polling",
        type=float,
        default=defaults.polling_s,
        metavar="SECONDS",
        help="KEDA's pollingInterval (default %(default)g, as the ScaledObject)",
    )
    add(
        "--scrape-interval",
        type=float,
        default=defaults.scrape_interval_s,
        metavar="SECONDS",
        help="Prometheus' scrape interval (default %(default)g)",
    )
    add(
        "--behavior",
        choices=("scaledobject", "defaults"),
        default=defaults.behavior,
        help="the HPAs' behavior: the ScaledObject's (manifests/) or the HPA's own defaults "
        "(default %(default)s)",
    )
    add(
        "--scale-down-window",
        type=float,
        default=None,
        metavar="SECONDS",
        help="another scale-down stabilization window (default: the behavior's, 300)",
    )
    add(
        "--first-sync",
        type=float,
        default=None,
        metavar="SECONDS",
        help="when the HPAs sync first, 0 to one sync period (default: half a sync after "
        "the load's first rise, the wait it meets on average)",
    )
    add(
        "--phase",
        type=float,
        default=None,
        metavar="FRACTION",
        help="instead: the load's first rise lands this share of a sync period after a "
        "sync, 0 to less than 1 (0.9: 1.5 s before the next of a 15 s sync)",
    )
    add(
        "--random-phase",
        action="store_true",
        help="draw the HPAs' first sync from --seed instead",
    )
    add(
        "--fleets",
        type=fleet_list,
        default=None,
        metavar="NAME,...",
        help=f"the fleets to run, of {', '.join(FLEET_NAMES)} (default: direct, prometheus, "
        "floor; agents: direct, floor-short, forecast)",
    )
    add(
        "--forecast-lead",
        type=float,
        default=defaults.forecast_lead_s,
        metavar="SECONDS",
        help="the forecast fleet's forecastLead, 1-600 (default %(default)g)",
    )
    add(
        "--out",
        type=Path,
        default=defaults.out_dir,
        metavar="DIR",
        help="where the CSV, chart, summary and logs go (default %(default)s)",
    )
    args = parser.parse_args(argv)
    check(parser, args)
    return Settings(
        scenario=args.scenario, seed=args.seed, duration_s=args.duration, step=args.step,
        quiet_per_s=args.quiet, bucket_rate=args.bucket_rate, sync_s=args.sync,
        polling_s=args.polling, scrape_interval_s=args.scrape_interval, behavior=args.behavior,
        scale_down_window_s=args.scale_down_window, first_sync_s=args.first_sync,
        phase=args.phase, random_phase=args.random_phase, out_dir=args.out,
        fleets=args.fleets, forecast_lead_s=args.forecast_lead,
    )  # fmt: skip


def fleet_list(text: str) -> tuple[FleetName, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    fleets = tuple(name for known in names for name in FLEET_NAMES if name == known)
    if len(fleets) != len(names) or len(set(fleets)) != len(fleets) or not fleets:
        raise argparse.ArgumentTypeError(f"a comma-separated list of {', '.join(FLEET_NAMES)}")
    return fleets


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 30 <= args.duration <= 900:
        parser.error("--duration: 30 to 900 seconds")
    if not 1 < args.step <= 10:
        parser.error("--step: above 1 (more than the pods can take) and at most 10")
    if not 1 <= args.quiet <= 30:
        parser.error("--quiet: 1 to 30 requests/s")
    if not 0.5 <= args.bucket_rate <= 100:
        parser.error("--bucket-rate: 0.5 to 100 tokens/s")
    for flag, value in (("--hpa-sync", args.sync), ("--polling", args.polling),
                        ("--scrape-interval", args.scrape_interval)):  # fmt: skip
        if not 1 <= value <= 60:
            parser.error(f"{flag}: 1 to 60 seconds")
    if args.first_sync is not None and not 0 <= args.first_sync < args.sync:
        parser.error("--first-sync: 0 to less than --hpa-sync seconds")
    if args.phase is not None and not 0 <= args.phase < 1:
        parser.error("--phase: 0 to less than 1 (a share of the sync period)")
    if sum(x is not None and x is not False for x in (args.first_sync, args.phase,
                                                     args.random_phase)) > 1:  # fmt: skip
        parser.error("--first-sync, --phase and --random-phase: one at most")
    if args.scale_down_window is not None and not 0 <= args.scale_down_window <= 3600:
        parser.error("--scale-down-window: 0 to 3600 seconds")
    if not 1 <= args.forecast_lead <= 600:
        parser.error("--forecast-lead: 1 to 600 seconds")
    if args.fleets is not None and not {"direct", "forecast"} & set(args.fleets):
        parser.error("--fleets: direct or forecast among them (the target per pod comes from "
                     "the rating-scaler)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

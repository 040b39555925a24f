"""The loop closed: refused requests and pod cost of three fleets, over scenarios and seeds.

Runs the demo itself (`demo.orchestrate`) once per scenario and seed: three fleets of real
rating-api pods, each scaled by an emulated HPA (a sync every `--hpa-sync` s, the
ScaledObject's behavior read from manifests/, target 8/s per pod), one fed by the
rating-scaler over gRPC (direct), one by a real Prometheus (15 s scrape,
`sum(rate(openclaw_rating_api_requests_total[1m]))`), and the floor, fed the load offered
at that instant: what no HPA-driven scaler can beat. The same load comes from one load
generator. Seed k of n puts the load's first rise (k + 0.5) / n of a sync period after
a sync, so the seeds cover the sync cycle evenly; the seed also draws the bursts.

Reports, per run and as medians: requests refused by each fleet and the ratios
Prometheus / direct and direct / floor, pod-seconds against the oracle's
(ceil(offered / target) every second), the seconds from the first sync after a rise
until the fleet's right size was ready (the slowest rise of the run), and requests lost
(sent, no answer at all). Each run's outputs stay in `--out` (CSV, events, chart, summary).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench._scaler_procs import cpu_noise, table
from demo.load_control import LoadFailure
from demo.orchestrate import Settings, run
from demo.scenarios import SCENARIOS, ScenarioName
from demo.series import FLEETS, Summary
from harness.interrupt import Interrupted, until_signal
from harness.machine import machine

SEEDS = (1, 2, 3, 4, 5)
ATTEMPTS = 2  # a run whose load generator fell behind (a busy machine) is run once more
TARGET_REFUSED_RATIO = 5.0  # Prometheus / direct, at least
TARGET_FLOOR_RATIO = 1.3  # direct / floor, at most
TARGET_COST_RATIO = 1.3  # direct / oracle pod-seconds, at most
TARGET_AFTER_SYNC_S = 3.0  # from the first sync after the step to the right size, every seed


@dataclass(frozen=True)
class Outcome:
    scenario: ScenarioName
    seed: int
    phase: float  # the first rise lands this share of a sync after a sync
    summary: Summary
    pod_start_s: list[float]  # spawn to ready, of the pods started under load

    def refused_ratio(self) -> float | None:
        return self.summary.ratio("prometheus", "direct", "refused")

    def floor_ratio(self) -> float | None:
        return self.summary.ratio("direct", "floor", "refused")

    def cost(self, fleet: str) -> float | None:
        return self.summary.ratio(fleet, "oracle", "replica_seconds")

    def after_sync_s(self, fleet: str) -> float | None:
        return self.summary.fleets[fleet].after_sync_s

    def right_size_s(self, fleet: str) -> float | None:
        return self.summary.fleets[fleet].seconds_to_right_size

    def lost(self) -> int:
        return sum(self.summary.fleets[name].lost for name in FLEETS)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    print(f"{machine()}; CPU noise just before: {cpu_noise(sorted(os.sched_getaffinity(0))[:2])}.")
    outcomes = []
    for scenario in args.scenarios:
        for index, seed in enumerate(args.seeds):
            phase = (index + 0.5) / len(args.seeds)
            outcomes.append(run_one(scenario, seed, phase, args))
            print(f"  {scenario} seed {seed}: done", flush=True)
    report(outcomes, args.hpa_sync)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench closed_loop", description=__doc__)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=["step", "bursts"])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--duration", type=int, default=Settings().duration_s, help="s of load")
    parser.add_argument("--hpa-sync", type=float, default=Settings().sync_s, help="s, default 15")
    parser.add_argument("--out", type=Path, default=Path("out/bench/closed_loop"))
    parser.add_argument("--quick", action="store_true", help="one seed")
    args = parser.parse_args(list(argv))
    if args.quick:
        args.seeds = args.seeds[:1]
    return args


def run_one(scenario: ScenarioName, seed: int, phase: float, args: argparse.Namespace) -> Outcome:
    out_dir = args.out / f"{scenario}-{seed}"
    settings = replace(Settings(), scenario=scenario, seed=seed, duration_s=args.duration,
                       sync_s=args.hpa_sync, phase=phase, out_dir=out_dir)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, ATTEMPTS + 1):
        with (out_dir / "stdout.txt").open("w") as out:
            try:
                summary = asyncio.run(until_signal(run(settings, out)))
            except Interrupted as stop:
                raise SystemExit(128 + stop.signum) from None
            except LoadFailure as failure:
                print(f"  {scenario} seed {seed}, attempt {attempt}: {failure}", flush=True)
                if attempt == ATTEMPTS:
                    raise
                continue
        return Outcome(scenario, seed, phase, summary, pod_starts(out_dir / "events.csv"))
    raise AssertionError("unreachable")


def pod_starts(events_csv: Path) -> list[float]:
    """Seconds from spawn to ready of each pod started after the load began."""
    started: dict[str, float] = {}
    took = []
    with events_csv.open(newline="") as file:
        for event in csv.DictReader(file):
            key, t_s = f"{event['fleet']}/{event['pod']}", float(event["t_s"])
            if event["event"] == "start" and t_s >= 0:
                started[key] = t_s
            elif event["event"] == "ready" and key in started:
                took.append(t_s - started[key])
    return took


def shown(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "never" if value is None else f"{value:.{digits}f}{unit}"


def median(values: Sequence[float | None]) -> float | None:
    """None when any value is missing."""
    known = [value for value in values if value is not None]
    return statistics.median(known) if known and len(known) == len(values) else None


HEADER = ["run", "step after a sync", "refused direct", "refused Prometheus", "refused floor",
          "Prometheus / direct", "direct / floor", "pod-s direct / oracle",
          "pod-s floor / oracle", "pod-s Prometheus / oracle", "first sync to right size, direct",
          "first sync to right size, floor", "right size direct", "right size Prometheus",
          "lost", "pod start"]  # fmt: skip


def row(name: str, outcomes: Sequence[Outcome], sync_s: float) -> list[str]:
    def each(value: Callable[[Outcome], float | None], unit: str = "", digits: int = 1) -> str:
        return shown(median([value(o) for o in outcomes]), unit, digits)

    def refused(fleet: str) -> str:
        return each(lambda o: float(o.summary.fleets[fleet].refused), digits=0)

    def start(o: Outcome) -> float | None:
        return statistics.median(o.pod_start_s) if o.pod_start_s else None

    return [
        name,
        each(lambda o: o.phase * sync_s, " s"),
        refused("direct"),
        refused("prometheus"),
        refused("floor"),
        each(Outcome.refused_ratio, "x", 2),
        each(Outcome.floor_ratio, "x", 2),
        each(lambda o: o.cost("direct"), "x", 2),
        each(lambda o: o.cost("floor"), "x", 2),
        each(lambda o: o.cost("prometheus"), "x", 2),
        each(lambda o: o.after_sync_s("direct"), " s"),
        each(lambda o: o.after_sync_s("floor"), " s"),
        each(lambda o: o.right_size_s("direct"), " s"),
        each(lambda o: o.right_size_s("prometheus"), " s"),
        each(lambda o: float(o.lost()), digits=0),
        each(start, " s"),
    ]


def report(outcomes: Sequence[Outcome], sync_s: float) -> None:
    for scenario in SCENARIOS:
        runs = [o for o in outcomes if o.scenario == scenario]
        if not runs:
            continue
        print(
            f"\n{scenario}: {runs[0].summary.behavior}, HPA sync {sync_s:g} s (step after a "
            "sync: where the load's first rise lands in the sync cycle, seed k of n at "
            "(k + 0.5) / n of it)\n"
        )
        rows = [row(f"seed {o.seed}", [o], sync_s) for o in runs]
        rows.append([f"**{cell}**" for cell in row("median", runs, sync_s)])
        print(table(HEADER, rows, [False, *[True] * (len(HEADER) - 1)]))
        if scenario == "step":
            verdict(runs)
        else:
            per_rise(runs)


def per_rise(runs: Sequence[Outcome]) -> None:
    """Each burst's seconds to the right size, as the slowest hides the others."""
    print("\nSeconds to the right size, each burst (never: not within the burst):")
    for outcome in runs:
        bursts = outcome.summary.scenario.rises()
        for fleet in FLEETS:
            each = outcome.summary.fleets[fleet].per_rise_s
            cells = ", ".join(f"{b.rate_per_s}/s for {b.seconds} s: {shown(t, ' s')}"
                              for b, t in zip(bursts, each, strict=True))  # fmt: skip
            print(f"- seed {outcome.seed}, {fleet}: {cells}")


def meets(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def verdict(runs: Sequence[Outcome]) -> None:
    ratio = median([o.refused_ratio() for o in runs])
    floor = median([o.floor_ratio() for o in runs])
    cost = median([o.cost("direct") for o in runs])
    after = [o.after_sync_s("direct") for o in runs]
    worst = None if None in after else max(a for a in after if a is not None)
    limit = TARGET_AFTER_SYNC_S
    late = [o.seed for o, a in zip(runs, after, strict=True) if a is None or a > limit]
    lost = sum(o.lost() for o in runs)
    print(
        f"\nOn the step (medians of {len(runs)} seeds):\n"
        f"- direct refused {shown(ratio, 'x', 2)} fewer than Prometheus: "
        f"{meets(ratio is not None and ratio >= TARGET_REFUSED_RATIO)} >= "
        f"{TARGET_REFUSED_RATIO:g}x;\n"
        f"- direct refused {shown(floor, 'x', 2)} the floor's: "
        f"{meets(floor is not None and floor <= TARGET_FLOOR_RATIO)} <= {TARGET_FLOOR_RATIO:g}x;\n"
        f"- direct pod-seconds {shown(cost, 'x', 2)} the oracle's: "
        f"{meets(cost is not None and cost <= TARGET_COST_RATIO)} <= {TARGET_COST_RATIO:g}x;\n"
        f"- right size at most {shown(worst, ' s')} after the first sync after the step: "
        f"{meets(not late)} <= {TARGET_AFTER_SYNC_S:g} s in every seed"
        + (f" (late: seed {', '.join(map(str, late))})" if late else "")
        + f";\n- requests lost: {lost} ({meets(lost == 0)} 0)."
    )

"""The loop closed: refused requests and pod cost of both paths, over scenarios and seeds.

Runs the demo itself (`demo.run`) once per scenario and seed: two fleets of real
rating-api pods, each scaled by an emulated HPA (sync 15 s, the ScaledObject's
behavior, target 8/s per pod), one fed by the rating-scaler over gRPC, one by a real
Prometheus (15 s scrape, `sum(rate(openclaw_rating_api_requests_total[1m]))`), with the
same load from one load generator. The seed draws the bursts and where the HPAs' sync
cycle falls when the load rises. Reports, per run and as medians: requests refused by
each fleet and their ratio, each fleet's pod-seconds against the oracle's
(ceil(offered / target) every second), and the seconds until the fleet's ready pods
reached the right size (the slowest rise of the run). Each run's outputs stay in
`--out` (CSV, events, chart, summary).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench._scaler_procs import cpu_noise, machine, table
from demo.processes import Interrupted, until_signal
from demo.run import Settings, run
from demo.scenarios import SCENARIOS, ScenarioName
from demo.series import Summary

SEEDS = (1, 2, 3)
TARGET_REFUSED_RATIO = 5.0
TARGET_COST_RATIO = 1.3


@dataclass(frozen=True)
class Outcome:
    scenario: ScenarioName
    seed: int
    summary: Summary
    pod_start_s: list[float]  # spawn to ready, of the pods started under load

    def refused_ratio(self) -> float | None:
        return self.summary.ratio("prometheus", "direct", "refused")

    def cost(self, fleet: str) -> float | None:
        return self.summary.ratio(fleet, "oracle", "replica_seconds")

    def right_size_s(self, fleet: str) -> float | None:
        return self.summary.fleets[fleet].seconds_to_right_size


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    print(f"{machine()}; CPU noise just before: {cpu_noise(sorted(os.sched_getaffinity(0))[:2])}.")
    outcomes = []
    for scenario in args.scenarios:
        for seed in args.seeds:
            outcomes.append(run_one(scenario, seed, args))
            print(f"  {scenario} seed {seed}: done", flush=True)
    report(outcomes, Settings().sync_s)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench closed_loop", description=__doc__)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--duration", type=int, default=Settings().duration_s, help="s of load")
    parser.add_argument("--out", type=Path, default=Path("out/bench/closed_loop"))
    parser.add_argument("--quick", action="store_true", help="one seed")
    args = parser.parse_args(list(argv))
    if args.quick:
        args.seeds = args.seeds[:1]
    return args


def run_one(scenario: ScenarioName, seed: int, args: argparse.Namespace) -> Outcome:
    out_dir = args.out / f"{scenario}-{seed}"
    settings = replace(Settings(), scenario=scenario, seed=seed, duration_s=args.duration,
                       random_phase=True, out_dir=out_dir)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "stdout.txt").open("w") as out:
        try:
            summary = asyncio.run(until_signal(run(settings, out)))
        except Interrupted as stop:
            raise SystemExit(128 + stop.signum) from None
    return Outcome(scenario, seed, summary, pod_starts(out_dir / "events.csv"))


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


def row(name: str, outcomes: Sequence[Outcome]) -> list[str]:
    def figures(fleet: str) -> list[float | None]:
        return [float(o.summary.fleets[fleet].refused) for o in outcomes]

    return [
        name,
        shown(median([o.summary.wait_for_sync_s for o in outcomes]), " s"),
        shown(median(figures("direct")), digits=0),
        shown(median(figures("prometheus")), digits=0),
        shown(median([o.refused_ratio() for o in outcomes]), "x", 2),
        shown(median([o.cost("direct") for o in outcomes]), "x", 2),
        shown(median([o.cost("prometheus") for o in outcomes]), "x", 2),
        shown(median([o.right_size_s("direct") for o in outcomes]), " s"),
        shown(median([o.right_size_s("prometheus") for o in outcomes]), " s"),
        shown(
            median([statistics.median(o.pod_start_s) if o.pod_start_s else None for o in outcomes]),
            " s",
        ),
    ]


def report(outcomes: Sequence[Outcome], sync_s: float) -> None:
    header = ["run", "wait for a sync", "refused direct", "refused Prometheus",
              "Prometheus / direct", "pod-s direct / oracle", "pod-s Prometheus / oracle",
              "right size direct", "right size Prometheus", "pod start"]  # fmt: skip
    for scenario in SCENARIOS:
        runs = [o for o in outcomes if o.scenario == scenario]
        if not runs:
            continue
        print(
            f"\n{scenario}: {runs[0].summary.behavior}, HPA sync {sync_s:g} s (wait for a "
            "sync: from the load's first rise to the next sync, drawn from the seed)\n"
        )
        rows = [row(f"seed {o.seed}", [o]) for o in runs]
        rows.append([f"**{cell}**" for cell in row("median", runs)])
        print(table(header, rows, [False, *[True] * (len(header) - 1)]))
        if scenario == "step":
            verdict(runs, sync_s)
        else:
            per_rise(runs)


def per_rise(runs: Sequence[Outcome]) -> None:
    """Each burst's seconds to the right size, as the slowest hides the others."""
    print("\nSeconds to the right size, each burst (never: not within the burst):")
    for outcome in runs:
        bursts = outcome.summary.scenario.rises()
        for fleet in ("direct", "prometheus"):
            each = outcome.summary.fleets[fleet].per_rise_s
            cells = ", ".join(f"{b.rate_per_s}/s for {b.seconds} s: {shown(t, ' s')}"
                              for b, t in zip(bursts, each, strict=True))  # fmt: skip
            print(f"- seed {outcome.seed}, {fleet}: {cells}")


def verdict(runs: Sequence[Outcome], sync_s: float) -> None:
    ratio = median([o.refused_ratio() for o in runs])
    cost = median([o.cost("direct") for o in runs])
    sized = median([o.right_size_s("direct") for o in runs])
    starts = [s for o in runs for s in o.pod_start_s]
    allowed = sync_s + (statistics.median(starts) if starts else 0.0)

    def meets(ok: bool) -> str:
        return "meets" if ok else "misses"

    print(
        f"\nOn the step: the direct fleet refused {shown(ratio, 'x', 2)} fewer requests than the "
        f"Prometheus fleet ({meets(ratio is not None and ratio >= TARGET_REFUSED_RATIO)} the "
        f"target of >= {TARGET_REFUSED_RATIO:g}x); its pod-seconds were {shown(cost, 'x', 2)} the "
        f"oracle's ({meets(cost is not None and cost <= TARGET_COST_RATIO)} <= "
        f"{TARGET_COST_RATIO:g}x); it reached the right size after {shown(sized, ' s')} "
        f"({meets(sized is not None and sized <= allowed)} one sync plus one pod start, "
        f"{allowed:.1f} s)."
    )

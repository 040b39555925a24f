"""Recurring agent bursts: what a forecast saves against a short and a long scale-down window.

Runs the demo's `agents` scenario (`demo.orchestrate`) once per seed: a quiet 12/s with
6 bursts of 6-10x, 20-40 s long, every P s (P from 120 to 200 s, +-5 %), through three
fleets of real rating-api pods: `direct` (the rating-scaler, the ScaledObject's 300 s
scale-down window), `floor-short` (the load offered at that instant, a 30 s window,
then 100 % per 15 s) and `forecast` (the rating-scaler with `forecast: recurring`, the
same short window). Scored on bursts 4-6 (from the end of the third: the first three
teach the forecast its period): each fleet's refused requests and pod-seconds, and
both against the oracle's.

With `--scenarios step bursts` it runs those loads through `direct`, `floor` and a
`forecast` fleet with the direct path's own behavior instead: with no pattern the
forecast must change nothing.

A full agents run takes about 6 x P s, 13 to 20 minutes a seed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench._scaler_procs import cpu_noise, table
from demo.load_control import LoadFailure
from demo.orchestrate import Settings, run
from demo.scenarios import SCENARIOS, ScenarioName
from demo.series import FleetName, Summary
from harness.interrupt import Interrupted, until_signal
from harness.machine import machine

SEEDS = (1, 2, 3)
TARGET_REFUSED = 0.25  # forecast / floor-short, refused on bursts 4-6, at most
TARGET_COST = 0.7  # forecast / direct, pod-seconds on bursts 4-6, at most
TARGET_NO_PATTERN = 1.05  # forecast / direct on step and bursts, refused and pod-seconds
NO_PATTERN_FLEETS: tuple[FleetName, ...] = ("direct", "floor", "forecast")


@dataclass(frozen=True)
class Outcome:
    scenario: ScenarioName
    seed: int
    summary: Summary

    def scored(self, fleet: str) -> tuple[int, float]:
        figures = self.summary.fleets[fleet]
        return figures.scored_refused, figures.scored_replica_seconds

    def ratio(self, slow: str, fast: str, what: str) -> float | None:
        key = f"scored_{what}" if self.scenario == "agents" else what
        return self.summary.ratio(slow, fast, key)  # type: ignore[arg-type]


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    print(f"{machine()}; CPU noise just before: {cpu_noise(sorted(os.sched_getaffinity(0))[:2])}.")
    outcomes = []
    for scenario in args.scenarios:
        for seed in args.seeds:
            outcomes.append(run_one(scenario, seed, args))
            print(f"  {scenario} seed {seed}: done", flush=True)
    report(outcomes)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench forecast", description=__doc__)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=["agents"])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--forecast-lead", type=float, default=Settings().forecast_lead_s)
    parser.add_argument("--out", type=Path, default=Path("out/bench/forecast"))
    parser.add_argument("--quick", action="store_true", help="one seed")
    args = parser.parse_args(list(argv))
    if args.quick:
        args.seeds = args.seeds[:1]
    return args


def run_one(scenario: ScenarioName, seed: int, args: argparse.Namespace) -> Outcome:
    out_dir = args.out / f"{scenario}-{seed}"
    fleets = None if scenario == "agents" else NO_PATTERN_FLEETS
    settings = replace(Settings(), scenario=scenario, seed=seed, out_dir=out_dir, fleets=fleets,
                       forecast_lead_s=args.forecast_lead, random_phase=True)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "stdout.txt").open("w") as out:
        try:
            summary = asyncio.run(until_signal(run(settings, out)))
        except Interrupted as stop:
            raise SystemExit(128 + stop.signum) from None
        except LoadFailure as failure:
            print(f"  {scenario} seed {seed}: {failure}", flush=True)
            raise
    return Outcome(scenario, seed, summary)


def shown(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def median(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known and len(known) == len(values) else None


def report(outcomes: Sequence[Outcome]) -> None:
    agents = [o for o in outcomes if o.scenario == "agents"]
    if agents:
        agent_report(agents)
    others = [o for o in outcomes if o.scenario != "agents"]
    if others:
        no_pattern_report(others)


AGENT_HEADER = ["run", "period", "refused direct", "refused floor-short", "refused forecast",
                "pod-s direct", "pod-s floor-short", "pod-s forecast", "pod-s oracle",
                "forecast / floor-short refused", "forecast / direct pod-s",
                "forecast / oracle pod-s"]  # fmt: skip


def agent_row(o: Outcome) -> list[str]:
    period = o.summary.scenario.period_s
    refused = [str(o.scored(name)[0]) for name in ("direct", "floor-short", "forecast")]
    cost = [f"{o.scored(name)[1]:.0f}" for name in ("direct", "floor-short", "forecast", "oracle")]
    return [
        f"seed {o.seed}",
        shown(period, " s", 0),
        *refused,
        *cost,
        shown(o.ratio("forecast", "floor-short", "refused"), "x"),
        shown(o.ratio("forecast", "direct", "replica_seconds"), "x"),
        shown(o.ratio("forecast", "oracle", "replica_seconds"), "x"),
    ]


def agent_report(runs: Sequence[Outcome]) -> None:
    print("\nagents, scored on bursts 4-6 (refused: 429s and no answer; pod-s: running pods)\n")
    rows = [agent_row(o) for o in runs]
    print(table(AGENT_HEADER, rows, [False, *[True] * (len(AGENT_HEADER) - 1)]))
    refused = median([o.ratio("forecast", "floor-short", "refused") for o in runs])
    cost = median([o.ratio("forecast", "direct", "replica_seconds") for o in runs])
    print(
        f"\nMedians of {len(runs)} seeds: forecast refused {shown(refused, 'x')} floor-short's "
        f"({meets(refused is not None and refused <= TARGET_REFUSED)} <= {TARGET_REFUSED:g}x); "
        f"pod-seconds {shown(cost, 'x')} direct's "
        f"({meets(cost is not None and cost <= TARGET_COST)} <= {TARGET_COST:g}x)."
    )
    print("\nWho pays (medians: refused on bursts 4-6, pod-seconds against the oracle's):")
    for fleet in ("direct", "floor-short", "forecast"):
        refused_n = statistics.median(o.scored(fleet)[0] for o in runs)
        over = median([o.ratio(fleet, "oracle", "replica_seconds") for o in runs])
        print(f"- {fleet}: {refused_n:g} refused, {shown(over, 'x')} the oracle's pod-seconds")


def no_pattern_report(runs: Sequence[Outcome]) -> None:
    print("\nNo pattern (step, bursts): forecast against direct, the same behavior\n")
    header = ["run", "refused direct", "refused forecast", "pod-s direct", "pod-s forecast",
              "refused ratio", "pod-s ratio"]  # fmt: skip
    rows = []
    for o in runs:
        direct, forecast = o.summary.fleets["direct"], o.summary.fleets["forecast"]
        rows.append([
            f"{o.scenario} seed {o.seed}", str(direct.refused), str(forecast.refused),
            f"{direct.replica_seconds:.0f}", f"{forecast.replica_seconds:.0f}",
            shown(o.ratio("forecast", "direct", "refused"), "x"),
            shown(o.ratio("forecast", "direct", "replica_seconds"), "x"),
        ])  # fmt: skip
    print(table(header, rows, [False, *[True] * (len(header) - 1)]))
    worst = [o.ratio("forecast", "direct", "replica_seconds") for o in runs]
    ok = all(w is not None and w <= TARGET_NO_PATTERN for w in worst)
    print(f"\nPod-seconds within {TARGET_NO_PATTERN:g}x of direct in every run: {meets(ok)}.")
    refused_ok = all(refused_within(o) for o in runs)
    print(f"Refused within {TARGET_NO_PATTERN:g}x of direct in every run: {meets(refused_ok)}.")


def refused_within(o: Outcome) -> bool:
    """The forecast fleet refused at most TARGET_NO_PATTERN x the direct fleet's (none
    when the direct refused none)."""
    direct, forecast = o.summary.fleets["direct"].refused, o.summary.fleets["forecast"].refused
    return forecast <= direct * TARGET_NO_PATTERN


def meets(ok: bool) -> str:
    return "meets" if ok else "MISSES"

"""The measured seconds and the arithmetic on them (pure: no I/O, no clock).

Each second of the run has one `Row`: what was offered, the oracle's replica count, and
for each fleet what its HPA had set, how many pods ran and were ready, and what the
load generator sent and got back. Pods' lifetimes (`PodLife`) give the exact
replica-seconds and when a fleet reached the right size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from demo.scenarios import Phase, Scenario, oracle_replicas
from harness.hpa import HpaSpec, Tolerance, metric_replicas

FleetName = Literal["direct", "prometheus", "floor", "floor-short", "forecast"]
# floor: its HPA reads the load offered at that instant, the best any HPA-fed metric can do
FLEETS: tuple[FleetName, ...] = ("direct", "prometheus", "floor")
# agents: the floor with a short scale-down window, and the direct path with a forecast
# and the same short window, beside today's direct path
AGENT_FLEETS: tuple[FleetName, ...] = ("direct", "floor-short", "forecast")
FLEET_NAMES: tuple[FleetName, ...] = ("direct", "prometheus", "floor", "floor-short", "forecast")


def fleets_for(scenario: str) -> tuple[FleetName, ...]:
    """The fleets a scenario runs by default."""
    return AGENT_FLEETS if scenario == "agents" else FLEETS


@dataclass(frozen=True)
class FleetState:
    """A fleet at one moment, as its control loop sees it."""

    metric: float | None
    desired: int
    running: int
    ready: int
    active: bool | None
    forecast: float | None = None  # forecast: recurring: the scaler's forecast at the last read


@dataclass(frozen=True)
class FleetSecond:
    """One fleet in one second."""

    metric: float | None  # the trigger's value at its last read (KEDA's poll or a sync)
    desired: int  # the replica count its HPA set (the Deployment's spec)
    running: int  # pod processes alive at the second's end, terminating ones included
    ready: int  # pods in the load balancer at the second's end
    sent: int
    ok: int  # answered 200
    refused_429: int
    errors: int  # no answer: refused connection, reset, timeout, no ready pod
    lost: int  # of the errors: written to a pod, whose connection ended before any response
    p99_ms: float | None  # of the answered requests (200 and 429)
    forecast: float | None = None  # the forecast fleet's: its own CSV column


FLEET_COLUMNS = tuple(field.name for field in fields(FleetSecond) if field.name != "forecast")


@dataclass(frozen=True)
class Row:
    t_s: int
    phase: str
    offered_per_s: int  # planned
    oracle_replicas: int
    fleets: dict[FleetName, FleetSecond]


def make_row(
    scenario: Scenario,
    t_s: int,
    states: dict[FleetName, FleetState],
    lines: dict[FleetName, dict[str, Any]],
    *,
    target_per_pod: float,
    min_replicas: int,
    max_replicas: int,
) -> Row:
    """One second from the fleets' states at its end and the load generator's lines."""
    rate = scenario.rate_at(t_s)
    fleets = {}
    for name in states:
        state, line = states[name], lines[name]
        fleets[name] = FleetSecond(
            metric=state.metric, desired=state.desired, running=state.running, ready=state.ready,
            sent=int(line["sent"]), ok=int(line["ok"]), refused_429=int(line["r429"]),
            errors=int(line["errors"]), lost=int(line["lost"]), p99_ms=line["p99_ms"],
            forecast=state.forecast,
        )  # fmt: skip
    oracle = oracle_replicas(rate, target_per_pod, min_replicas, max_replicas)
    return Row(t_s, scenario.phase_at(t_s).name, rate, oracle, fleets)


def columns(fleets: Sequence[FleetName] = FLEETS) -> list[str]:
    head = ["t_s", "phase", "offered_per_s", "oracle_replicas"]
    extra = ["forecast_forecast_per_s"] if "forecast" in fleets else []
    return head + [f"{fleet}_{name}" for fleet in fleets for name in FLEET_COLUMNS] + extra


@dataclass(frozen=True)
class PodLife:
    """One pod of a fleet, in seconds since the load started (None: not (yet) so)."""

    name: str
    pid: int
    started_s: float
    ready_s: float | None
    unready_s: float | None  # left the load balancer: terminating, or exited
    exited_s: float | None


def replica_seconds(lives: Iterable[PodLife], end_s: float, start_s: float = 0.0) -> float:
    """Seconds of pod processes alive within [start_s, end_s]: what the fleet cost."""
    total = 0.0
    for life in lives:
        stop = end_s if life.exited_s is None else min(life.exited_s, end_s)
        total += max(0.0, stop - max(start_s, life.started_s))
    return total


def max_alive(lives: Iterable[PodLife], end_s: float) -> int:
    """The most pod processes alive at once within [0, end_s]."""
    changes: list[tuple[float, int]] = []
    for life in lives:
        if life.started_s <= end_s:
            changes.append((max(0.0, life.started_s), 1))
            if life.exited_s is not None:
                changes.append((life.exited_s, -1))
    alive = most = 0
    for _, change in sorted(changes, key=lambda c: (c[0], c[1])):
        alive += change
        most = max(most, alive)
    return most


def ready_at(lives: Iterable[PodLife], t_s: float) -> int:
    return sum(
        1
        for life in lives
        if life.ready_s is not None
        and life.ready_s <= t_s
        and (life.unready_s is None or life.unready_s > t_s)
    )


def right_size(rate_per_s: float, target_per_pod: float, tolerance: Tolerance, high: int) -> int:
    """The fewest pods at which the HPA stops asking for more: the oracle's count, or
    fewer when the load is within the HPA's tolerance of their target."""
    needed = oracle_replicas(rate_per_s, target_per_pod, 1, high)
    while (
        needed > 1
        and metric_replicas(rate_per_s, target_per_pod, needed - 1, tolerance) == needed - 1
    ):
        needed -= 1
    return needed


def seconds_to_size(lives: Sequence[PodLife], phase: Phase, needed: int) -> float | None:
    """Seconds from the phase's start until `needed` pods are ready (0 if they already
    are), within the phase; None if that never happened."""
    rising = (life.ready_s for life in lives if life.ready_s is not None)
    moments = [phase.start_s, *sorted(t for t in rising if phase.start_s < t < phase.end_s)]
    for moment in moments:
        if ready_at(lives, moment) >= needed:
            return moment - phase.start_s
    return None


def seconds_to_right_size(
    lives: Sequence[PodLife],
    scenario: Scenario,
    target_per_pod: float,
    tolerance: Tolerance,
    high: int,
) -> float | None:
    """The slowest of the scenario's rises (the step, each burst) to the right size;
    None when one of them never got there."""
    each = seconds_to_size_per_rise(lives, scenario, target_per_pod, tolerance, high)
    return None if None in each else max((t for t in each if t is not None), default=0.0)


def seconds_to_size_per_rise(
    lives: Sequence[PodLife],
    scenario: Scenario,
    target_per_pod: float,
    tolerance: Tolerance,
    high: int,
) -> list[float | None]:
    """For each rise of the load, seconds until the right size (None: not within it)."""
    return [
        seconds_to_size(lives, phase, right_size(phase.rate_per_s, target_per_pod, tolerance, high))
        for phase in scenario.rises()
    ]


def after_first_sync(
    per_rise_s: Sequence[float | None], rises: Sequence[Phase], syncs_s: Iterable[float]
) -> float | None:
    """For the slowest rise, seconds from the first sync at or after the rise until its
    right size was ready (0 when it was ready by then); None when a rise never got there,
    or got there with no sync after it (none known)."""
    syncs = sorted(syncs_s)
    worst = 0.0
    for phase, took in zip(rises, per_rise_s, strict=True):
        first = next((t for t in syncs if t >= phase.start_s), None)
        if took is None or (took > 0 and first is None):
            return None
        if first is not None:
            worst = max(worst, phase.start_s + took - first)
    return worst


@dataclass(frozen=True)
class FleetSummary:
    refused: int
    answered: int
    replica_seconds: float
    seconds_to_right_size: float | None
    max_replicas: int
    sent: int = 0
    errors: int = 0
    lost: int = 0  # sent, and the connection ended before any response
    per_rise_s: tuple[float | None, ...] = ()  # seconds to the right size, each rise
    after_sync_s: float | None = None  # from the first sync after a rise to its right size
    scored_refused: int = 0  # from the scenario's `scored_from_s` on (agents: bursts 4-6)
    scored_replica_seconds: float = 0.0


def summarize_fleet(
    rows: Sequence[Row],
    fleet: FleetName,
    lives: Sequence[PodLife],
    scenario: Scenario,
    *,
    target_per_pod: float,
    tolerance: Tolerance,
    max_replicas: int,
    syncs_s: Sequence[float] = (),
) -> FleetSummary:
    seconds = [row.fleets[fleet] for row in rows]
    per_rise = seconds_to_size_per_rise(lives, scenario, target_per_pod, tolerance, max_replicas)
    scored = [row.fleets[fleet] for row in rows if row.t_s >= scenario.scored_from_s]
    return FleetSummary(
        refused=sum(s.refused_429 + s.errors for s in seconds),
        answered=sum(s.ok for s in seconds),
        replica_seconds=replica_seconds(lives, scenario.duration_s),
        seconds_to_right_size=None
        if None in per_rise
        else max((t for t in per_rise if t is not None), default=0.0),
        max_replicas=max_alive(lives, scenario.duration_s),
        sent=sum(s.sent for s in seconds),
        errors=sum(s.errors for s in seconds),
        lost=sum(s.lost for s in seconds),
        per_rise_s=tuple(per_rise),
        after_sync_s=after_first_sync(per_rise, scenario.rises(), syncs_s),
        scored_refused=sum(s.refused_429 + s.errors for s in scored),
        scored_replica_seconds=replica_seconds(
            lives, scenario.duration_s, start_s=scenario.scored_from_s
        ),
    )


def summarize_oracle(
    scenario: Scenario, *, target_per_pod: float, min_replicas: int, max_replicas: int
) -> FleetSummary:
    counts = [
        oracle_replicas(rate, target_per_pod, min_replicas, max_replicas)
        for rate in scenario.planned()
    ]
    offered = sum(scenario.planned())
    return FleetSummary(
        refused=0,
        answered=offered,
        replica_seconds=float(sum(counts)),
        seconds_to_right_size=0.0,
        max_replicas=max(counts),
        sent=offered,
        scored_replica_seconds=float(sum(counts[scenario.scored_from_s :])),
    )


@dataclass(frozen=True)
class Summary:
    scenario: Scenario
    target_per_pod: float
    behavior: str
    sync_s: float
    first_sync_s: float
    offered_planned: int
    fleets: dict[str, FleetSummary]  # each fleet's, then "oracle"

    @property
    def wait_for_sync_s(self) -> float:
        """From the load's first rise to the next HPA sync."""
        rises = self.scenario.rises()
        first_rise_s = rises[0].start_s if rises else 0.0
        return (self.first_sync_s - first_rise_s) % self.sync_s

    @property
    def fleet_names(self) -> list[FleetName]:
        """The fleets that ran, without the oracle."""
        return [name for name in FLEET_NAMES if name in self.fleets]

    @property
    def offered_measured(self) -> int:
        """What the load generator sent to the fleet that got least."""
        return min(self.fleets[name].sent for name in self.fleet_names)

    def ratio(
        self,
        slow: str,
        fast: str,
        what: Literal["refused", "replica_seconds", "scored_refused", "scored_replica_seconds"],
    ) -> float | None:
        top, bottom = getattr(self.fleets[slow], what), getattr(self.fleets[fast], what)
        return None if not bottom else top / bottom

    def as_json(self) -> dict[str, object]:
        """Exactly the documented keys of summary.json (agents: the scored part too)."""
        document = self._as_json()
        if self.scenario.name == "agents":
            document["scored_from_s"] = self.scenario.scored_from_s
            for name, fleet in self.fleets.items():
                scored = document["fleets"][name]  # type: ignore[index]
                scored["scored_refused"] = fleet.scored_refused
                scored["scored_replica_seconds"] = round(fleet.scored_replica_seconds, 1)
        return document

    def _as_json(self) -> dict[str, object]:
        return {
            "scenario": self.scenario.name,
            "target_per_pod": self.target_per_pod,
            "offered_planned": self.offered_planned,
            "offered_measured": self.offered_measured,
            "fleets": {
                name: {
                    "refused": fleet.refused,
                    "answered": fleet.answered,
                    "replica_seconds": round(fleet.replica_seconds, 1),
                    "seconds_to_right_size": _rounded(fleet.seconds_to_right_size),
                    "max_replicas": fleet.max_replicas,
                    "lost": fleet.lost,
                }
                for name, fleet in self.fleets.items()
            },
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 1)


def p99(latencies_ms: Sequence[float]) -> float | None:
    """The nearest-rank 99th percentile; None for no values."""
    if not latencies_ms:
        return None
    ordered = sorted(latencies_ms)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def summarize(
    rows: Sequence[Row],
    scenario: Scenario,
    lives: dict[FleetName, list[PodLife]],
    *,
    spec: HpaSpec,
    sync_s: float,
    first_sync_s: float,
    syncs_s: Mapping[str, Sequence[float]] | None = None,
) -> Summary:
    """Each fleet's figures and the oracle's, over the whole run; `syncs_s`: when each
    fleet's HPA synced."""
    fleets: dict[str, FleetSummary] = {
        name: summarize_fleet(
            rows, name, lives[name], scenario, target_per_pod=spec.target_per_pod,
            tolerance=spec.tolerance, max_replicas=spec.max_replicas,
            syncs_s=(syncs_s or {}).get(name, ()),
        )
        for name in lives
    }  # fmt: skip
    oracle = summarize_oracle(
        scenario, target_per_pod=spec.target_per_pod,
        min_replicas=spec.min_replicas, max_replicas=spec.max_replicas,
    )  # fmt: skip
    return Summary(
        scenario=scenario,
        target_per_pod=spec.target_per_pod,
        behavior=spec.behavior.name,
        sync_s=sync_s,
        first_sync_s=first_sync_s,
        offered_planned=sum(scenario.planned()),
        fleets={**fleets, "oracle": oracle},
    )

"""The load the demo offers, second by second: a step, a seeded trace of agent bursts,
or agents' recurring bursts (a schedule with a period).

Pure: a scenario is a list of phases with a whole number of requests per second each,
so that the plan's total is an exact count. Every fleet gets the same plan.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scaler.scaling import desired_replicas

ScenarioName = Literal["step", "bursts", "agents"]
SCENARIOS: tuple[ScenarioName, ...] = ("step", "bursts", "agents")
# Shares of the duration. The step: idle long enough for a first scrape, the step long
# enough for `rate()[1m]` behind a 15 s scrape and two HPA syncs to catch up.
STEP_IDLE_SHARE, STEP_SHARE = 0.1, 0.7
BURSTS_LEAD_SHARE, BURSTS_TAIL_SHARE = 0.1, 0.15
BURSTS = 3
BURST_TIMES = (5.0, 10.0)  # each burst is this many times the quiet rate, drawn
BURST_WEIGHT, GAP_WEIGHT = (1.0, 2.0), (1.5, 3.0)  # lengths drawn, then fitted
# agents: scheduled runs. A period P drawn once, each burst P (+-5 %) after the last.
AGENT_BURSTS = 6
AGENT_PERIOD_S = (120.0, 200.0)
AGENT_JITTER = 0.05
AGENT_TIMES = (6.0, 10.0)
AGENT_LENGTH_S = (20, 40)
AGENT_LEAD_S = 30  # quiet before the first burst
AGENT_SCORED_FROM_BURST = 4  # bursts before it teach a forecast the period


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: int
    end_s: int
    rate_per_s: int

    @property
    def seconds(self) -> int:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Scenario:
    name: ScenarioName
    seed: int
    phases: tuple[Phase, ...]
    period_s: float | None = None  # agents: the period drawn

    @property
    def scored_from_s(self) -> int:
        """Where the scored part begins: agents, the end of the burst before the
        fourth (the first three teach a forecast the period); otherwise the start."""
        rises = self.rises()
        if self.name != "agents" or len(rises) < AGENT_SCORED_FROM_BURST:
            return 0
        return rises[AGENT_SCORED_FROM_BURST - 2].end_s

    @property
    def duration_s(self) -> int:
        return self.phases[-1].end_s

    def planned(self) -> list[int]:
        """Requests to send in each second, second 0 first."""
        return [phase.rate_per_s for phase in self.phases for _ in range(phase.seconds)]

    def rate_at(self, t_s: float) -> int:
        return self.phase_at(t_s).rate_per_s

    def phase_at(self, t_s: float) -> Phase:
        for phase in self.phases:
            if phase.start_s <= t_s < phase.end_s:
                return phase
        return self.phases[-1]

    def rises(self) -> list[Phase]:
        """The phases whose load is higher than the one before: the step, each burst."""
        return [
            b
            for a, b in zip(self.phases, self.phases[1:], strict=False)
            if b.rate_per_s > a.rate_per_s
        ]

    def describe(self) -> str:
        parts = [f"{p.name} {p.rate_per_s}/s for {p.seconds} s" for p in self.phases]
        every = "" if self.period_s is None else f", a burst every {self.period_s:.0f} s +-5 %"
        return f"{self.name} (seed {self.seed}{every}): " + ", ".join(parts)


def step(duration_s: int, rate_per_s: int, *, seed: int = 1) -> Scenario:
    """Idle for a tenth of `duration_s`, `rate_per_s` for seven tenths, idle again."""
    idle_s = round(duration_s * STEP_IDLE_SHARE)
    end_s = idle_s + round(duration_s * STEP_SHARE)
    return Scenario("step", seed, _phases([("idle", idle_s, 0), ("step", end_s, rate_per_s),
                                           ("down", duration_s, 0)]))  # fmt: skip


def bursts(duration_s: int, quiet_per_s: int, *, seed: int) -> Scenario:
    """Quiet load with `BURSTS` bursts of 5 to 10 times it, lengths and gaps drawn from
    `seed` and fitted into `duration_s`."""
    rng = random.Random(seed)
    lead_s = round(duration_s * BURSTS_LEAD_SHARE)
    middle_s = duration_s - lead_s - round(duration_s * BURSTS_TAIL_SHARE)
    weights = []
    for index in range(2 * BURSTS - 1):
        low, high = BURST_WEIGHT if index % 2 == 0 else GAP_WEIGHT
        weights.append(rng.uniform(low, high))
    ends = _fit(weights, middle_s, lead_s)
    marks: list[tuple[str, int, int]] = [("quiet", lead_s, quiet_per_s)]
    for index, end_s in enumerate(ends):
        if index % 2 == 0:
            rate = round(quiet_per_s * rng.uniform(*BURST_TIMES))
            marks.append((f"burst {index // 2 + 1}", end_s, rate))
        else:
            marks.append(("quiet", end_s, quiet_per_s))
    marks.append(("quiet", duration_s, quiet_per_s))
    return Scenario("bursts", seed, _phases(marks))


def agents(quiet_per_s: int, *, seed: int) -> Scenario:
    """Quiet load with `AGENT_BURSTS` bursts of 6 to 10 times it, each 20 to 40 s long,
    every P s (P drawn from 120 to 200 s, each gap P +-5 %), then half a period quiet."""
    rng = random.Random(seed)
    period_s = rng.uniform(*AGENT_PERIOD_S)
    marks: list[tuple[str, int, int]] = []
    at_s, end_s = float(AGENT_LEAD_S), AGENT_LEAD_S
    for index in range(AGENT_BURSTS):
        start_s = round(at_s)
        end_s = start_s + rng.randint(*AGENT_LENGTH_S)
        rate = round(quiet_per_s * rng.uniform(*AGENT_TIMES))
        marks += [("quiet", start_s, quiet_per_s), (f"burst {index + 1}", end_s, rate)]
        at_s += period_s * rng.uniform(1 - AGENT_JITTER, 1 + AGENT_JITTER)
    marks.append(("quiet", end_s + round(period_s / 2), quiet_per_s))
    return Scenario("agents", seed, _phases(marks), period_s=period_s)


def _fit(weights: Sequence[float], total_s: int, offset_s: int) -> list[int]:
    """End times of consecutive spans in proportion to `weights`, filling `total_s`."""
    scale, acc, ends = total_s / sum(weights), 0.0, []
    for weight in weights:
        acc += weight * scale
        ends.append(offset_s + round(acc))
    return ends


def _phases(marks: Sequence[tuple[str, int, int]]) -> tuple[Phase, ...]:
    """Phases from (name, end, rate) marks; the first starts at 0; empty ones dropped."""
    phases, start_s = [], 0
    for name, end_s, rate in marks:
        if end_s > start_s:
            phases.append(Phase(name, start_s, end_s, rate))
            start_s = end_s
    return tuple(phases)


def build(name: ScenarioName, *, duration_s: int, base_per_s: int, seed: int) -> Scenario:
    """`step`: `base_per_s` is the step's rate; `bursts` and `agents`: the quiet rate
    (`agents` draws its own duration, about six periods)."""
    if name == "step":
        return step(duration_s, base_per_s, seed=seed)
    if name == "agents":
        return agents(base_per_s, seed=seed)
    return bursts(duration_s, base_per_s, seed=seed)


def oracle_replicas(rate_per_s: float, target_per_pod: float, low: int, high: int) -> int:
    """The cost floor: ceil(offered / target), within the replica bounds."""
    return max(low, min(high, desired_replicas(rate_per_s, target_per_pod)))


def first_sync_s(scenario: Scenario, sync_s: float, *, drawn_from: int | None = None) -> float:
    """When the HPAs sync first, in [0, sync_s): half a sync before the load's first rise
    (the wait a rise meets on average), or drawn from a seed."""
    if drawn_from is not None:
        return random.Random(f"hpa-phase-{drawn_from}").uniform(0.0, sync_s)
    rises = scenario.rises()
    first_rise_s = rises[0].start_s if rises else 0
    return (first_rise_s + sync_s / 2) % sync_s


def first_sync_at_phase(scenario: Scenario, sync_s: float, phase: float) -> float:
    """When the HPAs sync first, in [0, sync_s), for the load's first rise to land
    `phase` of a sync period (0 to 1) after a sync: it then waits (1 - phase) x sync_s."""
    if not 0 <= phase < 1:
        raise ValueError(f"a phase is 0 to less than 1 sync period, not {phase}")
    rises = scenario.rises()
    first_rise_s = rises[0].start_s if rises else 0
    return (first_rise_s - phase * sync_s) % sync_s

"""The scripted burst: idle, a step to several times the pods' refill, held, back down.

Load comes from `hey`, one process per pod (the demo has no load balancer), each
paced (`-q` per worker, `-c` workers) and bounded in time (`-z`), so the number of
requests is bounded too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from demo.processes import Child, Children, Pod

BODY = '{"items":[{"id":"agent-planner","up":42,"down":7}]}'
# hey paces each worker by its own ticker, all started together: at a fractional rate per
# worker their extra requests land in the same second (41/s from 5 workers at 8.2/s comes
# as 40, 40, 40, 40, 45). So as few workers as can keep up: a request takes a few ms.
MAX_PER_WORKER_PER_S = 50.0
REQUEST_TIMEOUT_S = 5
# Shares of the duration: idle long enough for Prometheus to take a first scrape,
# the step long enough for `rate()[1m]` behind a 15 s scrape to catch up.
IDLE_SHARE, STEP_SHARE = 1 / 8, 5 / 8


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float
    end_s: float
    rate_per_s: float

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


def burst(duration_s: float, step_per_s: float) -> list[Phase]:
    """Idle for 1/8 of `duration_s`, the step for 5/8, then back down to idle."""
    step_start_s = duration_s * IDLE_SHARE
    step_end_s = step_start_s + duration_s * STEP_SHARE
    return [
        Phase("idle", 0.0, step_start_s, 0.0),
        Phase("step", step_start_s, step_end_s, step_per_s),
        Phase("down", step_end_s, duration_s, 0.0),
    ]


def phase_at(phases: Sequence[Phase], t_s: float) -> Phase:
    for phase in phases:
        if phase.start_s <= t_s < phase.end_s:
            return phase
    return phases[-1]


def hey_argv(url: str, rate_per_s: float, seconds: float) -> list[str]:
    """`hey` sending `rate_per_s` POST /v1/rate to `url` for `seconds`."""
    workers = max(1, math.ceil(rate_per_s / MAX_PER_WORKER_PER_S))
    return [
        "hey",
        "-z",
        f"{seconds:.3f}s",
        "-c",
        str(workers),
        "-q",
        f"{rate_per_s / workers:.4f}",
        "-t",
        str(REQUEST_TIMEOUT_S),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-d",
        BODY,
        url,
    ]


def start_load(
    children: Children, pods: Sequence[Pod], rate_per_s: float, seconds: float
) -> list[Child]:
    """Spread `rate_per_s` evenly over the pods for `seconds`; one hey per pod."""
    share = rate_per_s / len(pods)
    return [
        children.spawn(f"hey-{pod.name}", hey_argv(pod.rate_url, share, seconds)) for pod in pods
    ]


class ScriptedLoad:
    """Starts each phase's load when the clock reaches it; remembers when it did."""

    def __init__(self, phases: Sequence[Phase], children: Children, pods: Sequence[Pod]) -> None:
        self.phases = list(phases)
        self.started_s: dict[str, float] = {}
        self._children = children
        self._pods = list(pods)

    def advance(self, t_s: float) -> Phase:
        """Call with the current time; starts the current phase's load once."""
        phase = phase_at(self.phases, t_s)
        if phase.name not in self.started_s:
            self.started_s[phase.name] = t_s
            remaining_s = phase.end_s - t_s
            if phase.rate_per_s > 0 and remaining_s > 0:
                start_load(self._children, self._pods, phase.rate_per_s, remaining_s)
        return phase

    def as_run(self, name: str) -> Phase | None:
        """The phase as it ran: from when its load was started to its planned end."""
        started_s = self.started_s.get(name)
        planned = next(phase for phase in self.phases if phase.name == name)
        return None if started_s is None else replace(planned, start_s=started_s)

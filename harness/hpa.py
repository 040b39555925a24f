"""The HorizontalPodAutoscaler's replica arithmetic (autoscaling/v2): pure, clock passed in.

What the HPA controller does at each sync for one External metric with an `AverageValue`
target, as kubernetes.io documents it ("Horizontal Pod Autoscaling": algorithm details,
scaling policies, stabilization window, default behavior):

1. From the metric: `desired = ceil(current * (value / current) / target)`, that is
   `ceil(value / target)`, unless the ratio `value / (target * current)` is within the
   tolerance, `1 - scaleDown.tolerance <= ratio <= 1 + scaleUp.tolerance`, which keeps
   the current count. Each direction's tolerance is its rules' `tolerance`
   (HPAConfigurableTolerance), the controller's 0.1 when unset. Values are compared in
   thousandths, as the controller reads quantities (`MilliValue`).
2. Stabilization: the recommendation is held between the lowest recommendation of the
   scale-up window and the highest of the scale-down window (the current count when
   it lies between them).
3. Rate limits: each policy allows a change from the replica count at the start of its
   period (the count now, minus what was added within the period, plus what was
   removed), `Percent` rounded up when adding and down when removing; `selectPolicy`
   Max takes the policy that allows the most change, Min the least, Disabled none.
4. `minReplicas` and `maxReplicas` bound the result.

"current" in step 1 is the number of pods that exist (the scale's status); in steps 2
and 3 it is the replica count the HPA set last (the scale's spec), as in the controller.

The project's own ScaledObject's behavior is read from its manifest by
`harness/scaledobject.py`, which builds on this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from scaler.scaling import desired_replicas

PolicyKind = Literal["Pods", "Percent"]
Select = Literal["Max", "Min", "Disabled"]
Reason = Literal[
    "DesiredWithinRange",
    "ScaleUpLimit",
    "ScaleDownLimit",
    "TooManyReplicas",
    "TooFewReplicas",
]
TOLERANCE = 0.1  # kube-controller-manager's --horizontal-pod-autoscaler-tolerance
MAX_WINDOW_S = 3600.0  # the API's bound on stabilizationWindowSeconds


@dataclass(frozen=True)
class Policy:
    kind: PolicyKind
    value: int
    period_s: float


@dataclass(frozen=True)
class Rules:
    """One direction of `spec.behavior` (`scaleUp` or `scaleDown`)."""

    stabilization_window_s: float
    policies: tuple[Policy, ...]
    select: Select = "Max"
    tolerance: float = TOLERANCE

    @property
    def longest_period_s(self) -> float:
        return max((policy.period_s for policy in self.policies), default=0.0)


@dataclass(frozen=True)
class Behavior:
    name: str
    scale_up: Rules
    scale_down: Rules

    def with_scale_down_window(self, window_s: float) -> Behavior:
        """The same behavior with another scale-down stabilization window."""
        if not 0 <= window_s <= MAX_WINDOW_S:
            raise ValueError(f"a stabilization window is 0 to {MAX_WINDOW_S:g} s, not {window_s}")
        down = replace(self.scale_down, stabilization_window_s=window_s)
        return replace(self, name=f"{self.name}, scale-down window {window_s:g} s", scale_down=down)


# The HPA's own defaults, as kubernetes.io lists them.
DEFAULT_BEHAVIOR = Behavior(
    name="HPA defaults",
    scale_up=Rules(0.0, (Policy("Percent", 100, 15.0), Policy("Pods", 4, 15.0)), "Max"),
    scale_down=Rules(300.0, (Policy("Percent", 100, 15.0),), "Max"),
)


@dataclass(frozen=True)
class Tolerance:
    """How far the usage ratio may stray from 1 before the HPA changes the count."""

    up: float = TOLERANCE
    down: float = TOLERANCE

    def within(self, ratio: float) -> bool:
        return 1.0 - self.down <= ratio <= 1.0 + self.up


@dataclass(frozen=True)
class HpaSpec:
    target_per_pod: float  # the External metric's AverageValue
    min_replicas: int = 1
    max_replicas: int = 20
    behavior: Behavior = DEFAULT_BEHAVIOR

    def __post_init__(self) -> None:
        if not self.target_per_pod > 0:
            raise ValueError(f"target_per_pod must be > 0, not {self.target_per_pod}")
        if not 0 < self.min_replicas <= self.max_replicas:
            raise ValueError("need 0 < min_replicas <= max_replicas")

    @property
    def tolerance(self) -> Tolerance:
        """Each direction's tolerance, from the behavior's rules."""
        return Tolerance(self.behavior.scale_up.tolerance, self.behavior.scale_down.tolerance)


@dataclass(frozen=True)
class Decision:
    """One sync: what the metric asked for, and what the HPA set."""

    at_s: float
    value: float
    metric_replicas: int
    stabilized: int
    desired: int
    reason: Reason


def milli(value: float) -> int:
    """A quantity in thousandths, as the controller reads it (never negative)."""
    return max(0, round(value * 1000))


def metric_replicas(
    value: float, target_per_pod: float, current: int, tolerance: Tolerance = Tolerance()
) -> int:
    """The count an External AverageValue metric asks for; `current` pods exist."""
    usage_m, target_m = milli(value), max(1, milli(target_per_pod))
    if current > 0 and tolerance.within(usage_m / (target_m * current)):
        return current
    # Whole thousandths divide exactly; no usage asks for 0 (minReplicas bounds it later).
    return 0 if usage_m == 0 else desired_replicas(usage_m, target_m)


@dataclass(frozen=True)
class _Timestamped:
    at_s: float
    replicas: int  # a recommendation, or a change (positive: added, negative: removed)


@dataclass
class Autoscaler:
    """One HPA's memory between syncs: its recommendations and its scale events."""

    spec: HpaSpec
    _recommendations: list[_Timestamped] = field(default_factory=list)
    _events: list[_Timestamped] = field(default_factory=list)

    @classmethod
    def seeded(cls, spec: HpaSpec, *, now_s: float, replicas: int) -> Autoscaler:
        """An HPA that already stands at `replicas`: the controller starts the scale-down
        window of an HPA it first sees with the HPA's last desired count."""
        return cls(spec, [_Timestamped(now_s, replicas)])

    def sync(self, now_s: float, *, value: float, spec_replicas: int, pods: int) -> Decision:
        """One sync at `now_s`: the metric reads `value`, the scale's spec is
        `spec_replicas`, `pods` exist. The caller then sets the spec to `desired`."""
        proposal = metric_replicas(value, self.spec.target_per_pod, pods, self.spec.tolerance)
        reason: Reason
        if spec_replicas > self.spec.max_replicas:
            stabilized, desired, reason = proposal, self.spec.max_replicas, "TooManyReplicas"
        elif spec_replicas < self.spec.min_replicas:
            stabilized, desired, reason = proposal, self.spec.min_replicas, "TooFewReplicas"
        else:
            stabilized = self._stabilize(now_s, spec_replicas, proposal)
            desired, reason = self._limit(now_s, spec_replicas, stabilized)
        if desired != spec_replicas:
            self._events.append(_Timestamped(now_s, desired - spec_replicas))
        return Decision(now_s, value, proposal, stabilized, desired, reason)

    def _stabilize(self, now_s: float, current: int, proposal: int) -> int:
        up_window = self.spec.behavior.scale_up.stabilization_window_s
        down_window = self.spec.behavior.scale_down.stabilization_window_s
        up, down = proposal, proposal
        for rec in self._recommendations:
            if rec.at_s > now_s - up_window:
                up = min(up, rec.replicas)
            if rec.at_s > now_s - down_window:
                down = max(down, rec.replicas)
        oldest_s = now_s - max(up_window, down_window)
        self._recommendations = [r for r in self._recommendations if r.at_s > oldest_s]
        self._recommendations.append(_Timestamped(now_s, proposal))
        return min(max(current, up), down)

    def _limit(self, now_s: float, current: int, desired: int) -> tuple[int, Reason]:
        """Bound by the rate limits and by min/max replicas, as the controller does."""
        spec = self.spec
        if desired > current:
            limit = max(current, self._up_limit(now_s, current, spec.behavior.scale_up))
            if limit < spec.max_replicas and desired > limit:
                return limit, "ScaleUpLimit"
            if limit >= spec.max_replicas and desired > spec.max_replicas:
                return spec.max_replicas, "TooManyReplicas"
        elif desired < current:
            limit = min(current, self._down_limit(now_s, current, spec.behavior.scale_down))
            if limit > spec.min_replicas and desired < limit:
                return limit, "ScaleDownLimit"
            if limit <= spec.min_replicas and desired < spec.min_replicas:
                return spec.min_replicas, "TooFewReplicas"
        return desired, "DesiredWithinRange"

    def period_start(self, now_s: float, current: int, period_s: float) -> int:
        """The replica count at the start of a policy period ending now."""
        changes = sum(e.replicas for e in self._events if e.at_s > now_s - period_s)
        return current - changes

    def _up_limit(self, now_s: float, current: int, rules: Rules) -> int:
        if rules.select == "Disabled" or not rules.policies:
            return current
        proposals = []
        for policy in rules.policies:
            start = self.period_start(now_s, current, policy.period_s)
            if policy.kind == "Pods":
                proposals.append(start + policy.value)
            else:  # rounded up, so that a small count still grows
                proposals.append(math.ceil(start * (1 + policy.value / 100)))
        self._forget_events(now_s)
        return max(proposals) if rules.select == "Max" else min(proposals)

    def _down_limit(self, now_s: float, current: int, rules: Rules) -> int:
        if rules.select == "Disabled" or not rules.policies:
            return current
        proposals = []
        for policy in rules.policies:
            start = self.period_start(now_s, current, policy.period_s)
            if policy.kind == "Pods":
                proposals.append(start - policy.value)
            else:
                proposals.append(int(start * (1 - policy.value / 100)))
        self._forget_events(now_s)
        return min(proposals) if rules.select == "Max" else max(proposals)

    def _forget_events(self, now_s: float) -> None:
        behavior = self.spec.behavior
        longest = max(behavior.scale_up.longest_period_s, behavior.scale_down.longest_period_s)
        self._events = [e for e in self._events if e.at_s > now_s - longest]

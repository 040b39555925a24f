"""When a container's probes run and what their results make of it, as kubelet does.
Pure: the time is passed in, nothing here sleeps or probes.

As kubernetes.io documents it (and `pkg/kubelet/prober` does it):

- A probe first runs `initialDelaySeconds` after the container started, then every
  `periodSeconds` on a ticker: a slow probe does not push the next ones back, and a
  tick missed while it ran is taken at once.
- With a startupProbe, the readiness and liveness probes wait until it has
  succeeded, and their delays count from then. Readiness runs at once when startup
  succeeds (kubelet triggers it from the status update that marks the container
  started), so a pod is Ready in one probe, not one period later. Once it has
  succeeded the startup probe no longer runs.
- Results count as runs of one result: `successThreshold` successes in a row pass,
  `failureThreshold` failures in a row fail. Readiness starts failing (not ready),
  liveness passing, startup not yet passed.
- A failed startup or liveness probe has the container killed and restarted.
- `timeoutSeconds` bounds each probe (`e2e.probes`); a timeout is a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from e2e.podspec import Probe


class Schedule:
    """One probe's ticker and its consecutive-results count."""

    def __init__(self, probe: Probe, *, passing: bool | None) -> None:
        self.probe = probe
        self.passing = passing  # None: no result yet (a startup probe's first state)
        self.next_s: float | None = None  # None: not running
        self._last: bool | None = None
        self._run = 0

    def arm(self, from_s: float) -> None:
        self.next_s = from_s + self.probe.initial_delay_s

    def disarm(self) -> None:
        self.next_s = None

    def due(self, now_s: float) -> bool:
        return self.next_s is not None and now_s >= self.next_s

    def record(self, ok: bool, now_s: float) -> bool:
        """Count one result taken at `now_s`; returns whether the probe's state flipped."""
        if self.next_s is not None:
            following = self.next_s + self.probe.period_s
            self.next_s = following if following > now_s else now_s
        self._run = self._run + 1 if ok == self._last else 1
        self._last = ok
        needed = self.probe.success_threshold if ok else self.probe.failure_threshold
        if self._run < needed or ok == self.passing:
            return False
        self.passing = ok
        return True


@dataclass(frozen=True)
class Change:
    ready_changed: bool = False
    restart: bool = False


class ContainerProbes:
    """The startup, readiness and liveness probes of one container run."""

    def __init__(
        self,
        *,
        startup: Probe | None,
        readiness: Probe | None,
        liveness: Probe | None,
        started_s: float,
    ) -> None:
        self.startup = None if startup is None else Schedule(startup, passing=None)
        self.readiness = None if readiness is None else Schedule(readiness, passing=False)
        self.liveness = None if liveness is None else Schedule(liveness, passing=True)
        if self.startup is not None:
            self.startup.arm(started_s)
        else:
            self._arm_after_startup(started_s)

    @property
    def started(self) -> bool:
        return self.startup is None or self.startup.passing is True

    @property
    def ready(self) -> bool:
        return self.started and (self.readiness is None or self.readiness.passing is True)

    def schedules(self) -> list[Schedule]:
        return [s for s in (self.startup, self.readiness, self.liveness) if s is not None]

    def due(self, now_s: float) -> list[Schedule]:
        return [s for s in self.schedules() if s.due(now_s)]

    def next_due_s(self) -> float | None:
        armed = [s.next_s for s in self.schedules() if s.next_s is not None]
        return min(armed, default=None)

    def sleep_s(self, now_s: float, longest_s: float) -> float:
        """How long to wait before looking again: until the next probe, at most `longest_s`."""
        due_s = self.next_due_s()
        return longest_s if due_s is None else max(0.0, min(longest_s, due_s - now_s))

    def record(self, schedule: Schedule, ok: bool, now_s: float) -> Change:
        was_ready = self.ready
        flipped = schedule.record(ok, now_s)
        if flipped and not ok and schedule in (self.startup, self.liveness):
            return Change(ready_changed=was_ready, restart=True)
        if flipped and schedule is self.startup:
            schedule.disarm()
            self._arm_after_startup(now_s)
        return Change(ready_changed=self.ready != was_ready)

    def _arm_after_startup(self, from_s: float) -> None:
        for schedule in (self.readiness, self.liveness):
            if schedule is not None:
                schedule.arm(from_s)

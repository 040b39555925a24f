"""All targets the scaler polls, and the ScaledObjects that ask about them.

One poller per distinct set of pods, writing into the target's `TargetView`, which is
what the RPCs, `/metrics` and `/v1/targets` get from here; a target nobody asks about
for `idle_s` (10 minutes) is stopped and forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from scaler.poller import Clock, TargetPoller
from scaler.readmodel import TargetView
from scaler.target_key import TargetKey
from scaler.trigger import TriggerConfig

log = logging.getLogger("scaler.targets")

PollerFactory = Callable[[TargetKey], TargetPoller]


@dataclass(frozen=True, slots=True)
class ScaledObjectKey:
    namespace: str
    name: str
    metric: str


@dataclass(slots=True)
class ScaledObjectUse:
    trigger: TriggerConfig
    last_seen_at: float


class TargetLimitError(RuntimeError):
    """One more target would pass the process-wide cap (`--max-targets`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the scaler already polls {limit} targets, its limit (--max-targets {limit}); "
            "targets nobody asks about are forgotten after --forget-after seconds"
        )
        self.limit = limit


class Targets:
    def __init__(
        self,
        make_poller: PollerFactory,
        *,
        first_poll_timeout_s: float,
        max_targets: int = 1000,
        idle_s: float = 600.0,
        clock: Clock = time.monotonic,
        on_forget: Callable[[TargetKey], None] | None = None,
    ) -> None:
        self.pollers: dict[TargetKey, TargetPoller] = {}  # the writers
        self.views: dict[TargetKey, TargetView] = {}  # what readers get
        self.scaled_objects: dict[ScaledObjectKey, ScaledObjectUse] = {}
        self._make_poller = make_poller
        self._first_poll_timeout_s = first_poll_timeout_s
        self.max_targets = max_targets
        self._idle_s = idle_s
        self._clock = clock
        self._on_forget = on_forget

    async def view_for(
        self, namespace: str, name: str, trigger: TriggerConfig, *, wait: bool = True
    ) -> TargetView:
        """The target's view, its poller started on first use; waits (bounded) for the
        first poll.

        Raises TargetLimitError rather than start a target past `max_targets`.
        """
        view = self.views.get(trigger.target)
        if view is None:
            if len(self.pollers) >= self.max_targets:
                raise TargetLimitError(self.max_targets)
            poller = self._make_poller(trigger.target)
            self.pollers[trigger.target] = poller
            view = self.views[trigger.target] = poller.view
            log.info("new target %s (asked by %s/%s)", trigger.target.label, namespace, name)
            poller.start()
        elif trigger.window_s not in view.windows:
            await self.pollers[trigger.target].prepare(trigger.window_s)
        self.touch(view, trigger)
        key = ScaledObjectKey(namespace, name, trigger.metric)
        self._carry_forecast(self.scaled_objects.get(key), trigger, view)
        self.scaled_objects[key] = ScaledObjectUse(trigger, self._clock())
        if wait and view.cycles == 0:
            await view.wait_first_cycle(self._first_poll_timeout_s)
        return view

    def touch(self, view: TargetView, trigger: TriggerConfig) -> None:
        """The one place a target is marked as used: it is not forgotten while asked
        about, and its poller computes the answers for the trigger's window."""
        view.touch(trigger.window_s, forecast=trigger.forecast == "recurring")

    def _carry_forecast(
        self, before: ScaledObjectUse | None, trigger: TriggerConfig, view: TargetView
    ) -> None:
        """A ScaledObject that now names other pods (its `endpoints` list followed the
        ready pods) keeps its demand history, unless another ScaledObject uses them."""
        if before is None or before.trigger.target == trigger.target or view.forecast is None:
            return
        previous = self.views.get(before.trigger.target)
        shared = any(use.trigger.target == trigger.target for use in self.scaled_objects.values())
        if previous is not None and not shared:
            view.adopt_forecast(previous)

    async def forget_idle(self) -> None:
        now = self._clock()
        for key, use in list(self.scaled_objects.items()):
            if now - use.last_seen_at > self._idle_s:
                del self.scaled_objects[key]
        for target, view in list(self.views.items()):
            if now - view.last_used_at > self._idle_s:
                log.info("forgetting target %s: nobody asked for %.0fs", target.label, self._idle_s)
                del self.views[target]
                await self.pollers.pop(target).stop()
                if self._on_forget is not None:
                    self._on_forget(target)

    async def forget_idle_forever(self, every_s: float = 30.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.forget_idle()

    def has_fresh_data(self) -> bool:
        """True when there is no target yet, or at least one target has fresh data."""
        if not self.views:
            return True
        return any(view.has_fresh_data() for view in self.views.values())

    async def close(self) -> None:
        pollers, self.pollers, self.views = list(self.pollers.values()), {}, {}
        await asyncio.gather(*(poller.stop() for poller in pollers))

"""KEDA's ExternalScaler RPCs: thin handlers that read the pollers' answers.

No pod I/O happens on the request path, except the bounded first poll of a target
that nobody asked about before. Parsing and caching the triggers is
`trigger_cache.py`'s job; counting and timing the calls `rpc_metrics.py`'s.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.poller import TargetPoller
from scaler.rpc_metrics import RpcMetrics, counted_open, observed
from scaler.scaling import Answer
from scaler.targets import TargetLimitError, Targets
from scaler.trigger import MetadataError, TriggerConfig
from scaler.trigger_cache import TriggerCache

if TYPE_CHECKING:
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class ExternalScalerServicer(pb_grpc.ExternalScalerServicer):
    def __init__(self, targets: Targets, triggers: TriggerCache, rpc_metrics: RpcMetrics) -> None:
        self.targets = targets
        self.triggers = triggers
        self.rpc_metrics = rpc_metrics
        self._closing = asyncio.Event()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def close(self) -> None:
        """Refuse new calls and end open streams (SIGTERM)."""
        self._closing.set()

    async def _resolve(
        self, ref: pb.ScaledObjectRef, context: Context, *, spec: bool = False
    ) -> tuple[TriggerConfig, TargetPoller]:
        """The trigger and its poller; waits for a new target's first poll unless a spec
        call needs no pod (an explicit targetPerPod)."""
        if self._closing.is_set():
            await context.abort(grpc.StatusCode.UNAVAILABLE, "scaler is shutting down")
        try:
            trigger = self.triggers.parse(ref.namespace, ref.scalerMetadata)
        except MetadataError as exc:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"{ref.namespace}/{ref.name}: {exc}"
            )
        wait = not spec or trigger.target_per_pod is None
        try:
            poller = await self.targets.poller_for(ref.namespace, ref.name, trigger, wait=wait)
        except TargetLimitError as exc:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"{ref.namespace}/{ref.name}: {exc}"
            )
        return trigger, poller

    async def _open_stream(
        self, method: str, ref: pb.ScaledObjectRef, context: Context, *, spec: bool = False
    ) -> tuple[TriggerConfig, TargetPoller]:
        """Resolve a stream's target; streams are counted when opened, by how that went."""
        opening = self._resolve(ref, context, spec=spec)
        return await counted_open(self.rpc_metrics, method, context, opening)

    async def _fresh(
        self, ref: pb.ScaledObjectRef, context: Context
    ) -> tuple[TriggerConfig, Answer]:
        trigger, poller = await self._resolve(ref, context)
        found = poller.answer(trigger)
        if not found.has_data:
            await context.abort(grpc.StatusCode.UNAVAILABLE, poller.failure_summary())
        return trigger, found

    async def _target(
        self,
        ref: pb.ScaledObjectRef,
        trigger: TriggerConfig,
        poller: TargetPoller,
        context: Context,
    ) -> float | None:
        """The target per pod; None (after abort) while it cannot be known."""
        target = poller.answer(trigger).target_per_pod
        if target is None:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"{ref.namespace}/{ref.name}: target per pod not known yet: it comes from the "
                f"pods' {'refill_per_s' if trigger.metric == 'demand' else 'capacity'} once one "
                f"answers, or from targetPerPod; {poller.failure_summary()}",
            )
        return target

    @observed("GetMetricSpec")
    async def GetMetricSpec(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> pb.GetMetricSpecResponse:
        # Never a guess: KEDA writes the HPA's target only when it builds the HPA, so a
        # default would stick. While pods are away the last target they implied stays.
        trigger, poller = await self._resolve(request, context, spec=True)
        target = await self._target(request, trigger, poller, context)
        assert target is not None  # abort() raised otherwise
        return _spec_response(trigger, target)

    @observed("GetMetrics")
    async def GetMetrics(
        self, request: pb.GetMetricsRequest, context: Context
    ) -> pb.GetMetricsResponse:
        trigger, found = await self._fresh(request.scaledObjectRef, context)
        value = found.metric_value
        metric = pb.MetricValue(
            metricName=trigger.metric_name, metricValue=_int64(value), metricValueFloat=value
        )
        return pb.GetMetricsResponse(metricValues=[metric])

    @observed("IsActive")
    async def IsActive(self, request: pb.ScaledObjectRef, context: Context) -> pb.IsActiveResponse:
        _, found = await self._fresh(request, context)
        return pb.IsActiveResponse(result=found.active)

    async def StreamIsActive(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> AsyncIterator[pb.IsActiveResponse]:
        """The current state at once, then only changes; ends when the client or we go away."""
        trigger, poller = await self._open_stream("StreamIsActive", request, context)
        last: bool | None = None
        while not self._closing.is_set():
            found = poller.answer(trigger)
            if found.has_data and found.active != last:
                last = found.active
                yield pb.IsActiveResponse(result=last)
            self.targets.touch(poller, trigger)
            await self._next_cycle(poller)

    async def StreamMetricSpec(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> AsyncIterator[pb.GetMetricSpecResponse]:
        """The specs as soon as the target is known, then each time it changes.

        KEDA 2.21+ rebuilds the HPA from every message, so a target that changes with
        the pods' refill reaches the HPA without anyone touching the ScaledObject.
        """
        trigger, poller = await self._open_stream("StreamMetricSpec", request, context, spec=True)
        sent: int | None = None
        while not self._closing.is_set():
            target = poller.answer(trigger).target_per_pod
            if target is not None and _milli(target) != sent:  # KEDA keeps 3 decimals
                sent = _milli(target)
                yield _spec_response(trigger, target)
            self.targets.touch(poller, trigger)
            await self._next_cycle(poller)

    async def _next_cycle(self, poller: TargetPoller) -> None:
        closing = asyncio.ensure_future(self._closing.wait())
        cycle = asyncio.ensure_future(poller.wait_cycle_after(poller.cycles))
        try:
            await asyncio.wait({closing, cycle}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            cycle.cancel()


INT64_MAX = 2**63 - 1


def _milli(value: float) -> int:
    return round(value * 1000) if math.isfinite(value) else INT64_MAX


def _spec_response(trigger: TriggerConfig, target: float) -> pb.GetMetricSpecResponse:
    spec = pb.MetricSpec(
        metricName=trigger.metric_name, targetSize=max(1, _int64(target)), targetSizeFloat=target
    )
    return pb.GetMetricSpecResponse(metricSpecs=[spec])


def _int64(value: float) -> int:
    """KEDA's int64 fields: rounded, and clamped so that no float can overflow them."""
    if not math.isfinite(value):
        return INT64_MAX if value > 0 else 0
    return max(0, min(INT64_MAX, round(value)))

"""KEDA's ExternalScaler RPCs: thin handlers that read the targets' views.

No pod I/O happens on the request path, except the bounded wait for the first poll
of a target that nobody asked about before. The handlers parse each trigger through
a bounded cache (`TriggerCache`); counting and timing the calls is `rpc_metrics.py`'s
job.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.policy import HostPolicy
from scaler.readmodel import TargetView
from scaler.rpc_metrics import RpcMetrics, counted_open, observed
from scaler.scaling import Answer
from scaler.targets import TargetLimitError, Targets
from scaler.trigger import MetadataError, TriggerConfig, check_namespace, parse_trigger

if TYPE_CHECKING:
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

MAX_CACHED_TRIGGERS = 1024


class TriggerCache:
    """Parsed triggers, cached: KEDA sends the same metadata map on every call.

    Bounded (least recently used out) and keyed by the metadata alone; the namespace
    rule (`policy.namespace_problem`) depends on the caller and is checked on every
    call.
    """

    def __init__(self, hosts: HostPolicy, maxsize: int = MAX_CACHED_TRIGGERS) -> None:
        def parse(items: frozenset[tuple[str, str]]) -> TriggerConfig:
            return parse_trigger(dict(items), hosts)

        self._parse = functools.lru_cache(maxsize=maxsize)(parse)

    def parse(self, namespace: str, metadata: Mapping[str, str]) -> TriggerConfig:
        """The trigger a ScaledObject in `namespace` gives; raises MetadataError."""
        return check_namespace(self._parse(frozenset(metadata.items())), namespace)

    def clear(self) -> None:
        """Drop every parsed trigger (a target was forgotten: some may name it)."""
        self._parse.cache_clear()

    def cache_info(self) -> Any:
        """functools' hits, misses, maxsize and currsize."""
        return self._parse.cache_info()


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
    ) -> tuple[TriggerConfig, TargetView]:
        """The trigger and its target's view; waits for a new target's first poll
        unless a spec call needs no pod (an explicit targetPerPod)."""
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
            view = await self.targets.view_for(ref.namespace, ref.name, trigger, wait=wait)
        except TargetLimitError as exc:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"{ref.namespace}/{ref.name}: {exc}"
            )
        return trigger, view

    async def _open_stream(
        self, method: str, ref: pb.ScaledObjectRef, context: Context, *, spec: bool = False
    ) -> tuple[TriggerConfig, TargetView]:
        """Resolve a stream's target; streams are counted when opened, by how that went."""
        opening = self._resolve(ref, context, spec=spec)
        return await counted_open(self.rpc_metrics, method, context, opening)

    async def _fresh(
        self, ref: pb.ScaledObjectRef, context: Context
    ) -> tuple[TriggerConfig, Answer]:
        trigger, view = await self._resolve(ref, context)
        found = view.answer(trigger)
        if not found.has_data:
            await context.abort(grpc.StatusCode.UNAVAILABLE, view.failure_summary())
        return trigger, found

    async def _target(
        self,
        ref: pb.ScaledObjectRef,
        trigger: TriggerConfig,
        view: TargetView,
        context: Context,
    ) -> float | None:
        """The target per pod; None (after abort) while it cannot be known."""
        target = view.answer(trigger).target_per_pod
        if target is None:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"{ref.namespace}/{ref.name}: target per pod not known yet: it comes from the "
                f"pods' {'refill_per_s' if trigger.metric == 'demand' else 'capacity'} once one "
                f"answers, or from targetPerPod; {view.failure_summary()}",
            )
        return target

    @observed("GetMetricSpec")
    async def GetMetricSpec(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> pb.GetMetricSpecResponse:
        # Never a guess: KEDA writes the HPA's target only when it builds the HPA, so a
        # default would stick. While pods are away the last target they implied stays.
        trigger, view = await self._resolve(request, context, spec=True)
        target = await self._target(request, trigger, view, context)
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
        trigger, view = await self._open_stream("StreamIsActive", request, context)
        last: bool | None = None
        while not self._closing.is_set():
            found = view.answer(trigger)
            if found.has_data and found.active != last:
                last = found.active
                yield pb.IsActiveResponse(result=last)
            self.targets.touch(view, trigger)
            await self._next_cycle(view)

    async def StreamMetricSpec(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> AsyncIterator[pb.GetMetricSpecResponse]:
        """The specs as soon as the target is known, then each time it changes.

        KEDA 2.21+ rebuilds the HPA from every message, so a target that changes with
        the pods' refill reaches the HPA without anyone touching the ScaledObject.
        """
        trigger, view = await self._open_stream("StreamMetricSpec", request, context, spec=True)
        sent: int | None = None
        while not self._closing.is_set():
            target = view.answer(trigger).target_per_pod
            if target is not None and _milli(target) != sent:  # KEDA keeps 3 decimals
                sent = _milli(target)
                yield _spec_response(trigger, target)
            self.targets.touch(view, trigger)
            await self._next_cycle(view)

    async def _next_cycle(self, view: TargetView) -> None:
        closing = asyncio.ensure_future(self._closing.wait())
        cycle = asyncio.ensure_future(view.wait_reading_after(view.version))
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

"""KEDA's ExternalScaler RPCs: thin handlers that read the pollers' memory.

No pod I/O happens on the request path, except the bounded first poll of a target
that nobody asked about before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import grpc

from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.aggregation import Aggregate
from scaler.keys import HostPolicy
from scaler.metrics import ScalerMetrics
from scaler.poller import TargetPoller
from scaler.scaling import is_active, metric_value, target_per_pod
from scaler.targets import TargetLimitError, Targets
from scaler.trigger import MetadataError, TriggerConfig, parse_trigger

log = logging.getLogger("scaler.servicer")

if TYPE_CHECKING:
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
Request = TypeVar("Request")
Response = TypeVar("Response")
Handler = Callable[["ExternalScalerServicer", Request, "Context"], Awaitable[Response]]


def _code_name(context: Context, error: BaseException | None) -> str:
    """The status the client gets: the one set by abort(), else what gRPC makes of `error`."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if code is not None:
        return str(code)
    if error is None:
        return "OK"
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    return "UNKNOWN"  # grpc.aio answers an unexpected exception with UNKNOWN


def observed(method: str) -> Callable[[Handler[Request, Response]], Handler[Request, Response]]:
    """Count and time a unary RPC by its final status code."""

    def decorate(handler: Handler[Request, Response]) -> Handler[Request, Response]:
        @functools.wraps(handler)
        async def wrapper(
            self: ExternalScalerServicer, request: Request, context: Context
        ) -> Response:
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                return await handler(self, request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self.metrics.rpc.labels(method, _code_name(context, error)).inc()
                self.metrics.rpc_duration.labels(method).observe(time.perf_counter() - started)

        return wrapper

    return decorate


class ExternalScalerServicer(pb_grpc.ExternalScalerServicer):
    def __init__(self, targets: Targets, hosts: HostPolicy, metrics: ScalerMetrics) -> None:
        self.targets = targets
        self.metrics = metrics
        self._hosts = hosts
        self._closing = asyncio.Event()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def close(self) -> None:
        """Refuse new calls and end open streams (SIGTERM)."""
        self._closing.set()

    def forget(self) -> None:
        """A target was forgotten: drop the parsed triggers, which may name it."""
        _parse_cached.cache_clear()

    async def _resolve(
        self, ref: pb.ScaledObjectRef, context: Context, *, spec: bool = False
    ) -> tuple[TriggerConfig, TargetPoller]:
        """The trigger and its poller; waits for a new target's first poll unless a spec
        call needs no pod (an explicit targetPerPod)."""
        if self._closing.is_set():
            await context.abort(grpc.StatusCode.UNAVAILABLE, "scaler is shutting down")
        try:
            trigger = _parse(ref, self._hosts)
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
        error: BaseException | None = None
        try:
            return await self._resolve(ref, context, spec=spec)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.metrics.rpc.labels(method, _code_name(context, error)).inc()

    async def _fresh(
        self, ref: pb.ScaledObjectRef, context: Context
    ) -> tuple[TriggerConfig, Aggregate]:
        trigger, poller = await self._resolve(ref, context)
        agg = poller.aggregate(trigger.window_s)
        if not agg.has_data:
            await context.abort(grpc.StatusCode.UNAVAILABLE, poller.failure_summary())
        return trigger, agg

    async def _target(
        self,
        ref: pb.ScaledObjectRef,
        trigger: TriggerConfig,
        poller: TargetPoller,
        context: Context,
    ) -> float | None:
        """The target per pod; None (after abort) while it cannot be known."""
        target = target_per_pod(trigger, poller.aggregate(trigger.window_s))
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
        trigger, agg = await self._fresh(request.scaledObjectRef, context)
        value = metric_value(trigger, agg)
        metric = pb.MetricValue(
            metricName=trigger.metric_name, metricValue=_int64(value), metricValueFloat=value
        )
        return pb.GetMetricsResponse(metricValues=[metric])

    @observed("IsActive")
    async def IsActive(self, request: pb.ScaledObjectRef, context: Context) -> pb.IsActiveResponse:
        trigger, agg = await self._fresh(request, context)
        return pb.IsActiveResponse(result=is_active(trigger, agg))

    async def StreamIsActive(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> AsyncIterator[pb.IsActiveResponse]:
        """The current state at once, then only changes; ends when the client or we go away."""
        trigger, poller = await self._open_stream("StreamIsActive", request, context)
        last: bool | None = None
        while not self._closing.is_set():
            agg = poller.aggregate(trigger.window_s)
            if agg.has_data and is_active(trigger, agg) != last:
                last = is_active(trigger, agg)
                yield pb.IsActiveResponse(result=last)
            poller.touch(trigger.window_s)
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
            target = target_per_pod(trigger, poller.aggregate(trigger.window_s))
            if target is not None and _milli(target) != sent:  # KEDA keeps 3 decimals
                sent = _milli(target)
                yield _spec_response(trigger, target)
            poller.touch(trigger.window_s)
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


@functools.lru_cache(maxsize=1024)
def _parse_cached(items: frozenset[tuple[str, str]], hosts: HostPolicy) -> TriggerConfig:
    return parse_trigger(dict(items), hosts)


def _parse(ref: pb.ScaledObjectRef, hosts: HostPolicy) -> TriggerConfig:
    """Parse the metadata; KEDA sends the same map on every call, so cache it.

    `endpointSlices` may name only the ScaledObject's own namespace: a ScaledObject
    cannot make the scaler poll pods of another team.
    """
    trigger = _parse_cached(frozenset(ref.scalerMetadata.items()), hosts)
    slices = trigger.target.endpoint_slices
    if slices is not None and slices.split("/")[0] != ref.namespace:
        raise MetadataError(
            "endpointSlices",
            f"namespace {slices.split('/')[0]!r} is not the ScaledObject's ({ref.namespace!r})",
        )
    return trigger

"""A KEDA-like caller: many ScaledObjects asking the scaler over gRPC, every answer kept.

For each ScaledObject KEDA calls GetMetricSpec, then GetMetrics, then IsActive, on every
polling interval and HPA query; `external-push` triggers keep a StreamIsActive open and
reconnect after 2 s on error. Watchers ask GetMetrics of one-pod targets several times
a second, so that recovery after a fault can be timed finer than KEDA's pace.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import grpc

from harness.keda_client import KedaClient, metrics_request, scaled_object_ref
from scaler._proto import externalscaler_pb2 as pb
from soak.settings import Settings
from soak.under_test import Clock, pause

Metric = Literal["demand", "deficit"]
Role = Literal["keda", "watch", "stream"]
STREAM_RECONNECT_S = 2.0

# (target shape, metric, window): ten ScaledObjects in a row, then again.
_PLAN: tuple[tuple[str, Metric, int], ...] = (
    ("all", "demand", 2),
    ("all", "demand", 5),
    ("all", "deficit", 2),
    ("all", "demand", 2),
    ("pair", "demand", 2),
    ("pair", "deficit", 5),
    ("one", "demand", 2),
    ("one", "demand", 5),
    ("all", "demand", 5),
    ("pair", "demand", 5),
)


@dataclass(frozen=True, slots=True)
class ScaledObject:
    """One trigger as KEDA would send it; `pods` are the rating pods it names."""

    namespace: str
    name: str
    pods: tuple[int, ...]
    metric: Metric
    window_s: int
    role: Role = "keda"
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def metric_name(self) -> str:
        return f"openclaw-{self.metric}"

    def ref(self, scaler_address: str, endpoints: str) -> pb.ScaledObjectRef:
        metadata = {
            "scalerAddress": scaler_address,
            "endpoints": endpoints,
            "metric": self.metric,
            "window": str(self.window_s),
            **dict(self.extra),
        }
        return scaled_object_ref(self.name, self.namespace, metadata)


def shapes(pods: int) -> dict[str, list[tuple[int, ...]]]:
    """The targets: all pods, neighbouring pairs, single pods."""
    everyone = tuple(range(pods))
    pairs: list[tuple[int, ...]] = [(i, i + 1) for i in range(pods - 1)] or [everyone]
    return {"all": [everyone], "pair": pairs, "one": [(i,) for i in range(pods)]}


def plan(count: int, pods: int, streams: int) -> list[ScaledObject]:
    """`count` KEDA-polled ScaledObjects over shared and distinct targets, one watcher per
    pod, and `streams` external-push triggers."""
    targets = shapes(pods)
    objects = []
    for i in range(count):
        shape, metric, window = _PLAN[i % len(_PLAN)]
        choices = targets[shape]
        extra = (("activationDemand", "5"), ("targetUtilization", "0.5")) if i % 7 == 3 else ()
        objects.append(
            ScaledObject(
                f"team-{i % 5}", f"rating-edge-{i:02d}", choices[(i // len(_PLAN)) % len(choices)],
                metric, window, extra=extra,
            )
        )  # fmt: skip
    for pod in range(pods):
        objects.append(ScaledObject("soak-watch", f"watch-{pod}", (pod,), "demand", 2, "watch"))
    everything = targets["all"] + targets["pair"] + targets["one"]
    for i in range(streams):
        pods_named = everything[i % len(everything)]
        objects.append(ScaledObject("soak-push", f"push-{i}", pods_named, "demand", 2, "stream"))
    return objects


@dataclass(frozen=True, slots=True)
class Call:
    """One unary RPC and its answer. `value` is the float KEDA would read."""

    so: int
    method: str
    started: float
    ended: float
    code: str
    value: float | None = None
    value_int: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    @property
    def keda_value(self) -> float | None:
        """What KEDA uses: the float when it is above 0, else the integer."""
        if self.value is not None and self.value > 0:
            return self.value
        return float(self.value_int) if self.value_int is not None else self.value


@dataclass(slots=True)
class StreamLog:
    """What one StreamIsActive saw: messages, and ends that we did not ask for."""

    so: int
    messages: list[tuple[float, bool]] = field(default_factory=list)
    ends: list[tuple[float, str, str]] = field(default_factory=list)


class Probe:
    def __init__(
        self,
        client: KedaClient,
        objects: Sequence[ScaledObject],
        refs: Sequence[pb.ScaledObjectRef],
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.objects = list(objects)
        self.calls: list[Call] = []
        self.streams: list[StreamLog] = []
        self._client = client
        self._refs = list(refs)
        self._settings = settings
        self._clock = clock
        self._rng = random.Random(settings.seed + 1)

    async def run(self, until: float) -> None:
        """Every ScaledObject at its own pace until `until`; each call bounded in time."""
        async with asyncio.TaskGroup() as group:
            for index, so in enumerate(self.objects):
                loop = {"keda": self._keda, "watch": self._watch, "stream": self._stream}
                group.create_task(loop[so.role](index, until))

    async def _keda(self, index: int, until: float) -> None:
        low, high = self._settings.keda_every_s
        await pause(self._rng.uniform(0, high), self._clock, until)  # KEDA's loops are not in step
        while self._clock() < until:
            spec = await self._unary(index, "GetMetricSpec")
            # KEDA asks GetMetrics for the name the spec gave (its HPA prefix stripped).
            name = spec.detail if spec.ok and spec.detail else self.objects[index].metric_name
            await self._unary(index, "GetMetrics", name)
            await self._unary(index, "IsActive")
            await pause(self._rng.uniform(low, high), self._clock, until)

    async def _watch(self, index: int, until: float) -> None:
        name = self.objects[index].metric_name
        while self._clock() < until:
            await self._unary(index, "GetMetrics", name)
            await pause(self._settings.watch_every_s, self._clock, until)

    async def _unary(self, index: int, method: str, metric_name: str = "") -> Call:
        ref = self._refs[index]
        timeout = self._settings.rpc_timeout_s
        started = self._clock()
        try:
            value, value_int, detail = await _ask(self._client, method, ref, metric_name, timeout)
            code = "OK"
        except grpc.aio.AioRpcError as exc:
            value, value_int, code, detail = None, None, exc.code().name, exc.details() or ""
        call = Call(index, method, started, self._clock(), code, value, value_int, detail)
        self.calls.append(call)
        return call

    async def _stream(self, index: int, until: float) -> None:
        log = StreamLog(index)
        self.streams.append(log)
        while self._clock() < until:
            stream = self._client.stream_is_active(self._refs[index])
            try:
                async with asyncio.timeout(max(0.0, until - self._clock())):
                    async for message in stream:
                        log.messages.append((self._clock(), bool(message.result)))
                log.ends.append((self._clock(), "OK", "the server ended the stream"))
            except TimeoutError:
                stream.cancel()
                return
            except grpc.aio.AioRpcError as exc:
                log.ends.append((self._clock(), exc.code().name, exc.details() or ""))
            await pause(STREAM_RECONNECT_S, self._clock, until)


Answer = tuple[float, int | None, str]  # value, integer value, detail


async def _ask(
    client: KedaClient,
    method: str,
    ref: pb.ScaledObjectRef,
    metric_name: str,
    deadline_s: float,
) -> Answer:
    """One RPC. GetMetricSpec: the target and the metric name; GetMetrics: the sum of the
    values (KEDA sums them); IsActive: 1 or 0."""
    if method == "GetMetricSpec":
        spec = await client.get_metric_spec(ref, timeout_s=deadline_s)
        if not spec.metricSpecs:
            return math.nan, None, "no metric spec"
        first = spec.metricSpecs[0]
        return first.targetSizeFloat, first.targetSize, first.metricName
    if method == "GetMetrics":
        answer = await client.get_metrics(metrics_request(ref, metric_name), timeout_s=deadline_s)
        if not answer.metricValues:
            return math.nan, None, "no metric values"
        floats = sum(value.metricValueFloat for value in answer.metricValues)
        ints = sum(value.metricValue for value in answer.metricValues)
        return floats, ints, ""
    active = await client.is_active(ref, timeout_s=deadline_s)
    return (1.0 if active else 0.0), None, ""

"""The ExternalScaler RPCs against a real grpc.aio server and real HTTP pods on loopback."""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.config import DEFAULT_HOST_POLICY
from scaler.forecast import DemandForecast
from scaler.server import Scaler, start
from scaler.servicer import INT64_MAX, TriggerCache, _int64
from scaler.trigger import MetadataError
from tests.scaler.conftest import ref, with_config
from tests.scaler.test_forecast import BURST_BAR, agent_bursts

PodFactory = Callable[..., Awaitable[FakePod]]
Stub = pb_grpc.ExternalScalerStub


async def keda_poll(stub: Stub, so_ref: pb.ScaledObjectRef) -> tuple[float, float, bool]:
    """What KEDA does on each poll: GetMetricSpec, then GetMetrics, then IsActive."""
    spec = await stub.GetMetricSpec(so_ref)
    name = spec.metricSpecs[0].metricName
    metrics = await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so_ref, metricName=name))
    active = await stub.IsActive(so_ref)
    return (
        spec.metricSpecs[0].targetSizeFloat,
        metrics.metricValues[0].metricValueFloat,
        active.result,
    )


async def settle(seconds: float = 0.7) -> None:
    await asyncio.sleep(seconds)


async def targets_view(scaler: Scaler) -> dict[str, Any]:
    """GET /v1/targets from a thread: the server runs in this test's event loop."""

    def get() -> dict[str, Any]:
        url = f"http://127.0.0.1:{scaler.http_port}/v1/targets"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    return await asyncio.to_thread(get)


async def test_keda_sequence_reports_total_demand_and_target(
    stub: Stub, fake_pods: PodFactory
) -> None:
    pods = [await fake_pods(demand_per_s=rate) for rate in (10.0, 20.0, 30.0)]
    so_ref = ref(pods, window="1")
    target, _, _ = await keda_poll(stub, so_ref)
    await settle()
    target, value, active = await keda_poll(stub, so_ref)
    assert target == pytest.approx(50.0 * 0.8)
    assert value == pytest.approx(60.0, rel=0.05)
    assert active is True
    spec = await stub.GetMetricSpec(so_ref)
    assert spec.metricSpecs[0].metricName == "openclaw-demand"
    assert spec.metricSpecs[0].targetSize == 40


async def test_metric_value_carries_both_int_and_float(stub: Stub, fake_pods: PodFactory) -> None:
    pods = [await fake_pods(demand_per_s=12.4)]
    so_ref = ref(pods, window="1")
    await stub.GetMetricSpec(so_ref)
    await settle()
    response = await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so_ref, metricName="x"))
    value = response.metricValues[0]
    assert value.metricValueFloat == pytest.approx(12.4, rel=0.05)
    assert value.metricValue == round(value.metricValueFloat)


async def test_deficit_metric_and_explicit_target(stub: Stub, fake_pods: PodFactory) -> None:
    pods = [await fake_pods(capacity=100.0) for _ in range(2)]  # each reports tokens = 50
    so_ref = ref(pods, metric="deficit", targetPerPod="25")
    target, value, _ = await keda_poll(stub, so_ref)
    assert target == 25.0
    assert value == pytest.approx(100.0)


async def test_activation_threshold(stub: Stub, fake_pods: PodFactory) -> None:
    pods = [await fake_pods(demand_per_s=5.0)]
    await keda_poll(stub, ref(pods, activationDemand="10", window="1"))
    await settle()
    assert (await stub.IsActive(ref(pods, activationDemand="10", window="1"))).result is False
    assert (await stub.IsActive(ref(pods, activationDemand="1", window="1"))).result is True


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        pytest.param({"metric": "fill"}, "metric", id="metric"),
        pytest.param({"window": "-1"}, "window", id="window"),
        pytest.param({"forecast": "maybe"}, "forecast", id="forecast"),
        pytest.param({"forecastLead": "0"}, "forecastLead", id="lead-zero"),
        pytest.param({"forecastLead": "1e9"}, "forecastLead", id="lead-huge"),
        pytest.param({"forecastLead": "\uff13\uff10"}, "forecastLead", id="lead-full-width"),
        pytest.param({"forecastLead": "\u0663\u0660"}, "forecastLead", id="lead-arabic-indic"),
        pytest.param({"targetUtilization": "80%"}, "targetUtilization", id="utilization"),
        pytest.param({"endpoints": "10.0.0.1:9090"}, "endpoints", id="ssrf-endpoint"),
        pytest.param(
            {"endpoints": "", "service": "kubernetes.default"}, "service", id="ssrf-service"
        ),
        pytest.param({"endpoints": ""}, "endpointSlices", id="no-target"),
        pytest.param(
            {"endpoints": "", "endpointSlices": "other/rating-api-admin"},
            "endpointSlices",
            id="slices-of-another-namespace",
        ),
    ],
)
async def test_bad_metadata_is_invalid_argument_naming_the_key(
    stub: Stub, fake_pods: PodFactory, scaler: Scaler, metadata: dict[str, str], key: str
) -> None:
    pods = [await fake_pods()]
    for call in (stub.GetMetricSpec, stub.IsActive):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(ref(pods, **metadata))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert repr(key) in (caught.value.details() or "")
    assert not scaler.targets.pollers  # refused before any request was sent


async def test_refused_hosts_are_never_contacted(stub: Stub, fake_pods: PodFactory) -> None:
    pod = await fake_pods()
    bad = pb.ScaledObjectRef(
        name="x", namespace="y", scalerMetadata={"endpoints": f"localhost.evil:{pod.port}"}
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetMetricSpec(bad)
    await settle(0.3)
    assert pod.requests == 0


async def test_pods_sharing_a_target_share_one_poller(
    stub: Stub, fake_pods: PodFactory, scaler: Scaler
) -> None:
    pods = [await fake_pods(demand_per_s=1.0) for _ in range(2)]
    await stub.GetMetricSpec(ref(pods, name="a", window="1"))
    await stub.GetMetricSpec(ref(list(reversed(pods)), name="b", metric="deficit"))
    assert len(scaler.targets.pollers) == 1
    assert len(scaler.targets.scaled_objects) == 2


async def test_failed_pods_keep_their_rate_then_total_is_extrapolated(
    stub: Stub, fake_pods: PodFactory, scaler: Scaler
) -> None:
    pods = [await fake_pods(demand_per_s=20.0) for _ in range(3)]
    so_ref = ref(pods, window="1")
    await keda_poll(stub, so_ref)
    await settle()
    pods[0].behaviour = "hang"
    await settle(0.35)  # a failed poll or two, still within 3 intervals
    _, value, _ = await keda_poll(stub, so_ref)
    assert value == pytest.approx(60.0, rel=0.1)
    await settle(1.0)  # now stale: extrapolated from the two that answer
    _, value, _ = await keda_poll(stub, so_ref)
    assert value == pytest.approx(60.0, rel=0.1)
    [target] = (await targets_view(scaler))["targets"]
    assert target["extrapolated"] is True
    assert target["pods_fresh"] == 2
    hung = next(pod for pod in target["pods"] if pod["address"].endswith(f":{pods[0].port}"))
    assert hung["error"].startswith("timeout")


@pytest.mark.parametrize("behaviour", ["garbage", "endless", "error", "huge", "absurd"])
async def test_misbehaving_pod_is_rejected_alone(
    stub: Stub, fake_pods: PodFactory, scaler: Scaler, behaviour: str
) -> None:
    good = await fake_pods(demand_per_s=30.0)
    bad = await fake_pods(demand_per_s=1000.0, behaviour=behaviour)
    so_ref = ref([good, bad], window="1")
    await keda_poll(stub, so_ref)
    await settle()
    _, value, _ = await keda_poll(stub, so_ref)
    assert value == pytest.approx(30.0, rel=0.1)  # the bad pod never answered: no estimate
    [target] = (await targets_view(scaler))["targets"]
    assert target["extrapolated"] is False
    errors = {pod["address"]: pod["error"] for pod in target["pods"]}
    assert errors[f"127.0.0.1:{bad.port}"]
    assert errors[f"127.0.0.1:{good.port}"] is None


async def test_restarted_pod_starts_a_new_series(
    stub: Stub, fake_pods: PodFactory, scaler: Scaler
) -> None:
    pod = await fake_pods(demand_per_s=25.0)
    so_ref = ref([pod], window="1")
    await keda_poll(stub, so_ref)
    await settle()
    pod.restart()
    for _ in range(6):
        await settle(0.2)
        _, value, _ = await keda_poll(stub, so_ref)
        assert 0.0 <= value <= 40.0
    assert value == pytest.approx(25.0, rel=0.15)
    [target] = (await targets_view(scaler))["targets"]
    assert target["pods"][0]["restarts"] == 1


async def test_all_pods_gone_is_unavailable_then_recovers(
    stub: Stub, fake_pods: PodFactory
) -> None:
    pods = [await fake_pods(demand_per_s=10.0) for _ in range(2)]
    ports = [pod.port for pod in pods]
    so_ref = ref(pods, window="1")
    await keda_poll(stub, so_ref)
    for pod in pods:
        await pod.stop()
    await settle(1.0)
    for call in (
        stub.IsActive(so_ref),
        stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so_ref)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "connect" in (caught.value.details() or "")
        assert str(ports[0]) in (caught.value.details() or "")
    spec = await stub.GetMetricSpec(so_ref)  # the HPA keeps its target meanwhile
    assert spec.metricSpecs[0].targetSizeFloat == pytest.approx(40.0)
    for pod, port in zip(pods, ports, strict=True):
        await pod.start(port)
    await settle(0.5)
    _, value, _ = await keda_poll(stub, so_ref)
    assert value == pytest.approx(20.0, rel=0.15)


async def test_stream_sends_state_at_once_then_only_changes(
    stub: Stub, fake_pods: PodFactory
) -> None:
    pod = await fake_pods(demand_per_s=0.0)
    call = stub.StreamIsActive(ref([pod], window="0.5"))
    first = await asyncio.wait_for(call.read(), 2.0)
    assert first.result is False
    pod.set_demand(20.0)
    second = await asyncio.wait_for(call.read(), 2.0)
    assert second.result is True
    with pytest.raises(TimeoutError):  # no repeats while nothing changes
        await asyncio.wait_for(asyncio.shield(call.read()), 1.0)
    call.cancel()


async def test_stream_ends_when_the_client_goes_away(
    stub: Stub, fake_pods: PodFactory, scaler: Scaler
) -> None:
    pod = await fake_pods(demand_per_s=5.0)
    calls = [stub.StreamIsActive(ref([pod], name=f"so-{i}")) for i in range(5)]
    for call in calls:
        await asyncio.wait_for(call.read(), 2.0)
    for call in calls:
        call.cancel()
    await settle(0.5)
    streams = [t for t in asyncio.all_tasks() if "StreamIsActive" in repr(t.get_coro())]
    assert streams == []
    assert (await stub.IsActive(ref([pod]))).result is True  # the server is fine


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, 0), (12.4, 12), (12.5, 12), (1e300, INT64_MAX), (float("inf"), INT64_MAX), (-3.0, 0)],
)
def test_int64_fields_never_overflow(value: float, expected: int) -> None:
    assert _int64(value) == expected


async def test_calls_are_counted_by_method_and_code(
    stub: Stub, fake_pods: PodFactory, scaler: Scaler
) -> None:
    pod = await fake_pods(demand_per_s=5.0)
    registry = scaler.registry

    def count(method: str, code: str) -> float:
        labels = {"method": method, "code": code}
        return registry.get_sample_value("openclaw_rating_scaler_rpc_total", labels) or 0.0

    await stub.GetMetricSpec(ref([pod]))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.IsActive(ref([pod], window="0"))
    good = stub.StreamIsActive(ref([pod]))
    await asyncio.wait_for(good.read(), 2.0)
    good.cancel()
    bad = stub.StreamIsActive(ref([pod], metric="fill"))
    with pytest.raises(grpc.aio.AioRpcError):
        await bad.read()
    assert count("GetMetricSpec", "OK") == 1
    assert count("IsActive", "INVALID_ARGUMENT") == 1
    assert count("StreamIsActive", "OK") == 1
    assert count("StreamIsActive", "INVALID_ARGUMENT") == 1


async def test_no_guessed_target_before_any_pod_answers(
    stub: Stub, fake_pods: PodFactory, scaler: Scaler
) -> None:
    pod = await fake_pods(demand_per_s=10.0)
    await pod.stop()  # nobody answers
    for metric, missing in (("demand", "refill_per_s"), ("deficit", "capacity")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetMetricSpec(ref([pod], metric=metric))
        details = caught.value.details() or ""
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "target per pod not known yet" in details and missing in details
        assert "targetPerPod" in details and "connect" in details
    labels = {"namespace": "edge", "scaled_object": "rating-api", "metric": "demand"}
    gauge = "openclaw_rating_scaler_target_per_pod"
    assert scaler.registry.get_sample_value(gauge, labels) is None  # no series, not a guess
    await pod.start(pod.port)
    await settle(0.5)
    spec = await stub.GetMetricSpec(ref([pod]))
    assert spec.metricSpecs[0].targetSizeFloat == pytest.approx(50.0 * 0.8)


async def test_an_explicit_target_is_answered_without_waiting_for_pods(
    fake_pods: PodFactory,
) -> None:
    pod = await fake_pods(behaviour="hang")
    slow = await start(with_config(poll_interval_s=30.0, pod_timeout_s=10.0))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{slow.grpc_port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
            spec = await stub.GetMetricSpec(ref([pod], targetPerPod="12.5"))
        [poller] = slow.targets.pollers.values()
        assert poller.cycles == 0  # the first poll (10 s against a hung pod) has not ended
        assert spec.metricSpecs[0].targetSizeFloat == 12.5
        assert spec.metricSpecs[0].targetSize == 12
    finally:
        await slow.stop()


async def test_stream_metric_spec_sends_the_target_once_known_and_on_each_change(
    stub: Stub, fake_pods: PodFactory
) -> None:
    pod = await fake_pods(refill_per_s=10.0)
    port = pod.port
    await pod.stop()
    so_ref = ref([pod])
    call = stub.StreamMetricSpec(so_ref)
    reading = asyncio.ensure_future(call.read())
    done, _ = await asyncio.wait({reading}, timeout=0.6)
    assert not done  # nothing while no pod has answered: no guess
    await pod.start(port)
    first = await asyncio.wait_for(reading, 5.0)
    assert [(s.metricName, s.targetSizeFloat) for s in first.metricSpecs] == [
        ("openclaw-demand", pytest.approx(8.0))
    ]
    pod.refill_per_s = 25.0  # the pods were redeployed with another --bucket-rate
    second = await asyncio.wait_for(call.read(), 5.0)
    assert second.metricSpecs[0].targetSizeFloat == pytest.approx(20.0)
    assert second.metricSpecs[0].targetSize == 20
    spec = await stub.GetMetricSpec(so_ref)  # the unary call agrees with the stream
    assert spec.metricSpecs[0].targetSizeFloat == pytest.approx(20.0)
    with pytest.raises(TimeoutError):  # no repeats while nothing changes
        await asyncio.wait_for(asyncio.shield(call.read()), 0.6)
    call.cancel()


async def test_stream_metric_spec_with_an_explicit_target_answers_at_once(
    stub: Stub, fake_pods: PodFactory, scaler: Scaler
) -> None:
    pod = await fake_pods(behaviour="hang")
    for target in ("10", "12.5"):  # a new ScaledObject generation opens a new stream
        call = stub.StreamMetricSpec(ref([pod], targetPerPod=target))
        message = await asyncio.wait_for(call.read(), 5.0)
        assert message.metricSpecs[0].targetSizeFloat == float(target)
        call.cancel()
    registry = scaler.registry
    opened = {"method": "StreamMetricSpec", "code": "OK"}
    assert registry.get_sample_value("openclaw_rating_scaler_rpc_total", opened) == 2


async def test_pods_that_never_answered_are_not_extrapolated(
    stub: Stub, fake_pods: PodFactory
) -> None:
    """A real poller: 1 pod at 20/s, 3 addresses nobody listens on."""
    silent = [await fake_pods() for _ in range(3)]
    for pod in silent:
        await pod.stop()
    pods = [await fake_pods(demand_per_s=20.0), *silent]
    so_ref = ref(pods, window="1", targetPerPod="10")
    await keda_poll(stub, so_ref)
    await settle()
    _, value, _ = await keda_poll(stub, so_ref)
    assert value == pytest.approx(20.0, rel=0.1)


# Parsed triggers cached by their metadata; the namespace rule checked on every call.

SLICES = {"endpointSlices": "edge/rating-api", "scalerAddress": "rating-scaler:6000"}


def test_the_same_metadata_is_parsed_once() -> None:
    triggers = TriggerCache(DEFAULT_HOST_POLICY)
    first = triggers.parse("edge", SLICES)
    assert triggers.parse("edge", dict(SLICES)) is first
    info = triggers.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 1, 1)


def test_a_cached_trigger_is_still_refused_to_another_namespace() -> None:
    triggers = TriggerCache(DEFAULT_HOST_POLICY)
    triggers.parse("edge", SLICES)
    with pytest.raises(MetadataError, match="namespace 'edge' is not the ScaledObject's") as err:
        triggers.parse("payments", SLICES)
    assert err.value.key == "endpointSlices"


def test_clear_drops_every_trigger() -> None:
    triggers = TriggerCache(DEFAULT_HOST_POLICY, maxsize=4)
    for port in range(1, 7):
        triggers.parse("edge", {"endpoints": f"127.0.0.1:{port}"})
    assert triggers.cache_info().currsize == 4
    triggers.clear()
    assert triggers.cache_info().currsize == 0


async def test_a_forecasting_scaled_object_reports_the_burst_ahead_everywhere(
    stub: Stub, fake_pods: PodFactory, scaler: Scaler
) -> None:
    pods = [await fake_pods(demand_per_s=12.0)]
    so_ref = ref(pods, forecast="recurring", forecastLead="30", targetPerPod="8", window="1")
    await keda_poll(stub, so_ref)
    [view] = scaler.targets.views.values()
    assert view.forecast is not None
    load = agent_bursts(1, seconds=1200)
    past = load.per_s[: load.starts[4] - 20]  # 20 s before the fifth burst
    first_s = math.floor(time.monotonic()) - len(past)
    view.forecast = DemandForecast()  # as if it had been polled through four bursts
    for second, demand in enumerate(past):
        view.forecast.record(first_s + second, demand)
    await view.wait_cycle_after(view.cycles, 2.0)
    _, value, active = await keda_poll(stub, so_ref)
    assert value >= BURST_BAR and active
    body = await targets_view(scaler)
    [target] = body["targets"]
    assert target["forecast"]["usable"] and target["forecast"]["period_s"] > 100
    assert 0 < target["forecast"]["next_burst_in_s"] <= 40
    [user] = target["scaled_objects"]
    assert (user["forecast"], user["forecast_lead_s"]) == ("recurring", 30.0)
    assert user["forecast_per_s"] >= BURST_BAR
    labels = {"namespace": "edge", "scaled_object": "rating-api", "metric": "demand"}
    forecast = scaler.registry.get_sample_value("openclaw_rating_scaler_forecast_per_s", labels)
    assert forecast is not None and forecast >= BURST_BAR
    period = scaler.registry.get_sample_value(
        "openclaw_rating_scaler_forecast_period_seconds", {"target": view.target.label}
    )
    assert period == target["forecast"]["period_s"]

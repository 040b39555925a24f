"""Every number a trigger may carry is bounded at parse time, and no float breaks the maths."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

import grpc
import pytest
from prometheus_client import generate_latest

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.config import DEFAULT_HOST_POLICY
from scaler.metrics import PREFIX
from scaler.scaling import MAX_REPLICAS, desired_replicas
from scaler.server import Scaler
from scaler.target_key import TargetKey
from scaler.targets import ScaledObjectKey, ScaledObjectUse
from scaler.trigger import MetadataError, TriggerConfig, parse_trigger
from tests.scaler.conftest import ref

PodFactory = Callable[..., Awaitable[FakePod]]
ENDPOINTS = {"endpoints": "127.0.0.1:9090"}
ARABIC_INDIC_5 = "\u0665"
FULL_WIDTH_5 = "\uff15"

BAD_METADATA = [
    pytest.param({"targetPerPod": "5e-324"}, "targetPerPod", id="per-pod-subnormal"),
    pytest.param({"targetPerPod": "0.0001"}, "targetPerPod", id="per-pod-below-min"),
    pytest.param({"targetPerPod": "1e999"}, "targetPerPod", id="per-pod-overflows"),
    pytest.param({"targetPerPod": FULL_WIDTH_5}, "targetPerPod", id="per-pod-full-width"),
    pytest.param({"targetPerPod": "1_000"}, "targetPerPod", id="per-pod-underscore"),
    pytest.param({"targetUtilization": "1e-300"}, "targetUtilization", id="utilization-tiny"),
    pytest.param(
        {"targetUtilization": "0." + ARABIC_INDIC_5}, "targetUtilization", id="util-arabic"
    ),
    pytest.param({"activationDemand": "1e300"}, "activationDemand", id="activation-huge"),
    pytest.param({"activationDemand": "-inf"}, "activationDemand", id="activation-minus-inf"),
    pytest.param({"window": "1e-300"}, "window", id="window-tiny"),
    pytest.param({"window": ARABIC_INDIC_5}, "window", id="window-arabic"),
    pytest.param({"port": ARABIC_INDIC_5 * 4}, "port", id="port-arabic"),
    pytest.param({"port": "+80"}, "port", id="port-signed"),
    pytest.param({"endpoints": ",,,"}, "endpoints", id="endpoints-only-commas"),
    pytest.param({"endpoints": "127.0.0.1:1,,127.0.0.1:2"}, "endpoints", id="endpoints-hole"),
    pytest.param({"endpoints": "127.0.0.1:1,"}, "endpoints", id="endpoints-trailing"),
    pytest.param(
        {"endpoints": f"127.0.0.1:{FULL_WIDTH_5 * 4}"}, "endpoints", id="endpoint-port-full-width"
    ),
]


@pytest.mark.parametrize(("metadata", "key"), BAD_METADATA)
def test_out_of_range_or_odd_numbers_are_refused_naming_the_key(
    metadata: dict[str, str], key: str
) -> None:
    with pytest.raises(MetadataError) as caught:
        parse_trigger(ENDPOINTS | metadata, DEFAULT_HOST_POLICY)
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("metadata", "attribute", "expected"),
    [
        pytest.param({"targetPerPod": "0.001"}, "target_per_pod", 0.001, id="per-pod-min"),
        pytest.param({"targetPerPod": "1e9"}, "target_per_pod", 1e9, id="per-pod-max"),
        pytest.param({"targetUtilization": ".01"}, "target_utilization", 0.01, id="util-min"),
        pytest.param({"activationDemand": "0"}, "activation_demand", 0.0, id="activation-zero"),
        pytest.param({"window": "0.1"}, "window_s", 0.1, id="window-min"),
        pytest.param({"window": "3e2"}, "window_s", 300.0, id="window-max"),
    ],
)
def test_the_documented_bounds_themselves_are_accepted(
    metadata: dict[str, str], attribute: str, expected: float
) -> None:
    trigger = parse_trigger(ENDPOINTS | metadata, DEFAULT_HOST_POLICY)
    assert getattr(trigger, attribute) == expected


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [
        pytest.param(1.0, 5e-324, MAX_REPLICAS, id="subnormal-target"),
        pytest.param(1e308, 1e-308, MAX_REPLICAS, id="overflowing-ratio"),
        pytest.param(1e12, 1.0, MAX_REPLICAS, id="capped-at-int32"),
        pytest.param(math.nan, 1.0, 1, id="nan-value"),
        pytest.param(1.0, math.nan, 1, id="nan-target"),
        pytest.param(1.0, math.inf, 1, id="inf-target"),
        pytest.param(-5.0, 1.0, 1, id="negative-value"),
    ],
)
def test_desired_replicas_never_overflows_nor_raises(
    value: float, target: float, expected: int
) -> None:
    assert desired_replicas(value, target) == expected


@pytest.mark.parametrize(("metadata", "key"), BAD_METADATA[:4] + BAD_METADATA[-4:])
async def test_bounds_hold_over_grpc_as_invalid_argument(
    scaler: Scaler, metadata: dict[str, str], key: str
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        so_ref = ref([], **(ENDPOINTS | metadata))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetMetricSpec(so_ref)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert repr(key) in (caught.value.details() or "")
    assert not scaler.targets.pollers


def _series(scaler: Scaler) -> str:
    return generate_latest(scaler.registry).decode()


async def test_one_broken_target_never_blanks_the_others(
    scaler: Scaler, fake_pods: PodFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken target and an absurd ScaledObject are left out; the healthy one stays."""
    pods = [await fake_pods(demand_per_s=10.0) for _ in range(3)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        for index, pod in enumerate(pods):
            await stub.GetMetricSpec(ref([pod], name=f"so-{index}", targetPerPod="10"))
    healthy, broken, absurd = (TargetKey(None, (("127.0.0.1", pod.port),), 9090) for pod in pods)

    def fail() -> None:
        raise RuntimeError("snapshot exploded")

    monkeypatch.setattr(scaler.targets.views[broken], "snapshot", fail)
    # A ScaledObject whose target per pod no parser would let through (5e-324).
    key = ScaledObjectKey("edge", "so-2", "demand")
    trigger = scaler.targets.scaled_objects[key].trigger
    scaler.targets.scaled_objects[key] = ScaledObjectUse(
        TriggerConfig(trigger.target, "demand", 0.8, 5e-324, 0.0, 1.0), last_seen_at=0.0
    )
    await asyncio.sleep(0.6)  # a few polls: every target has a rate

    text = _series(scaler)
    assert f'{PREFIX}pods{{target="{healthy.label}"}} 1.0' in text
    for family in ("pods", "pods_failed", "data_age_seconds", "pod_errors_total"):
        assert f'{PREFIX}{family}{{target="{broken.label}"' not in text  # whole, not half
    assert f'{PREFIX}desired_replicas{{metric="demand",namespace="edge",scaled_object="so-0"}}' in (
        text
    )
    skipped = scaler.registry.get_sample_value(PREFIX + "collect_skipped_total")
    assert skipped == 2.0  # once per scrape: the text above and this read
    absurd_labels = {"namespace": "edge", "scaled_object": "so-2", "metric": "demand"}
    assert scaler.registry.get_sample_value(PREFIX + "pods", {"target": absurd.label}) == 1.0
    desired = scaler.registry.get_sample_value(PREFIX + "desired_replicas", absurd_labels)
    assert desired == MAX_REPLICAS

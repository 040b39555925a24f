"""Hostile input for the scaler: arbitrary pod answers and arbitrary trigger metadata."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import grpc
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.aggregation import aggregate
from scaler.bucket_state import BucketState, BucketStateError, parse_bucket_state
from scaler.config import DEFAULT_HOST_POLICY
from scaler.discovery.contract import Unwatched
from scaler.poller import TargetPoller
from scaler.scaling import MAX_REPLICAS, desired_replicas
from scaler.series import PodSeries
from scaler.server import start
from scaler.target_key import TargetKey
from scaler.trigger import (
    MAX_TARGET,
    MAX_WINDOW_S,
    MIN_TARGET,
    MIN_UTILIZATION,
    MIN_WINDOW_S,
    MetadataError,
    parse_trigger,
)
from tests.scaler.conftest import FAST

FIELDS = ["uptime_s", "capacity", "refill_per_s", "tokens", "granted_total", "denied_total"]
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([1e308, -1e308, 0, -0.0, 2**53 + 1]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
bucket_like = st.fixed_dictionaries(
    {
        "schema": st.just("openclaw.bucket/v1"),
        "pod": st.text(max_size=300),
        "boot_id": st.text(max_size=10),
    },
    optional={name: numbers | json_values for name in FIELDS},
)


def dumps(doc: Any) -> bytes:
    try:
        return orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return repr(doc).encode()


def check_believable(state: BucketState) -> None:
    values = [getattr(state, name) for name in FIELDS]
    assert all(math.isfinite(value) and value >= 0 for value in values)
    assert 0 < state.capacity <= 1e9 and state.tokens <= state.capacity * (1 + 1e-9)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | json_values.map(dumps) | bucket_like.map(dumps))
def test_any_pod_answer_parses_to_a_believable_state_or_a_clear_error(body: bytes) -> None:
    try:
        state = parse_bucket_state(body)
    except BucketStateError as exc:
        assert str(exc)
    else:
        check_believable(state)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200) | bucket_like.map(dumps), min_size=1, max_size=6))
def test_poller_survives_any_answers_and_never_sums_absurd_values(bodies: list[bytes]) -> None:
    """Garbage in every poll: no exception escapes, and totals stay finite and non-negative."""

    async def scenario() -> None:
        answers = iter(bodies * 3)

        async def fetch(host: str, port: int) -> BucketState:
            from scaler.pod_errors import PodError

            try:
                return parse_bucket_state(next(answers))
            except BucketStateError as exc:
                raise PodError("invalid", str(exc)) from None

        class Two(Unwatched):
            async def addresses(self) -> list[tuple[str, int]]:
                return [("127.0.0.1", 1), ("127.0.0.1", 2)]

        poller = TargetPoller(TargetKey(None, (), 1), Two(), fetch, poll_interval_s=1.0)
        for _ in range(len(bodies)):
            await poller.poll_once()
        agg = poller.aggregate(5.0)
        for value in (agg.demand_per_s, agg.deficit_tokens, agg.refill_per_s_per_pod or 0.0):
            assert math.isfinite(value) and value >= 0

    asyncio.run(scenario())


metadata_maps = st.dictionaries(
    st.sampled_from(
        ["service", "endpoints", "endpointSlices", "port", "metric", "targetUtilization",
         "targetPerPod", "activationDemand", "window", "scalerAddress", "activator",
         "activatorEndpoints", "activatorPort"]
    ) | st.text(max_size=10),
    st.text(max_size=40)
    | st.sampled_from(["127.0.0.1:1", "0", "1e308", "nan", "-1", "demand", "fuzz/api", "5e-324",
                       "\u0665", ",,,"]),
    max_size=8,
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(metadata_maps)
def test_any_metadata_parses_or_names_a_key(metadata: dict[str, str]) -> None:
    try:
        trigger = parse_trigger(metadata, DEFAULT_HOST_POLICY)
    except MetadataError as exc:
        assert exc.key in {"service", "endpoints", "endpointSlices", "port", "metric",
                           "targetUtilization", "targetPerPod", "activationDemand",
                           "window", "activator", "activatorEndpoints",
                           "activatorPort"}  # fmt: skip
    else:
        assert MIN_WINDOW_S <= trigger.window_s <= MAX_WINDOW_S
        assert MIN_UTILIZATION <= trigger.target_utilization <= 1.0
        assert 0.0 <= trigger.activation_demand <= MAX_TARGET
        per_pod = trigger.target_per_pod
        assert per_pod is None or MIN_TARGET <= per_pod <= MAX_TARGET


@given(st.floats(), st.floats())
def test_desired_replicas_of_any_floats_is_an_int32_at_least_one(
    value: float, target: float
) -> None:
    assert 1 <= desired_replicas(value, target) <= MAX_REPLICAS


def test_any_metadata_over_grpc_is_ok_or_invalid_argument() -> None:
    """The same maps through the real server: never UNKNOWN or INTERNAL."""
    examples: list[dict[str, str]] = []

    @settings(max_examples=150, deadline=None, database=None)
    @given(metadata_maps)
    def collect(metadata: dict[str, str]) -> None:
        examples.append(metadata)

    collect()

    async def scenario() -> set[grpc.StatusCode]:
        scaler = await start(FAST)
        seen: set[grpc.StatusCode] = set()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
                stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
                for metadata in examples:
                    ref = pb.ScaledObjectRef(name="fuzz", namespace="fuzz", scalerMetadata=metadata)
                    try:
                        await stub.GetMetricSpec(ref, timeout=5)
                        seen.add(grpc.StatusCode.OK)
                    except grpc.aio.AioRpcError as exc:
                        seen.add(exc.code())
        finally:
            await scaler.stop()
        return seen

    codes = asyncio.run(scenario())
    # UNAVAILABLE: a valid trigger whose pods never answer has no target yet
    assert codes <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAVAILABLE,
    }
    assert grpc.StatusCode.INVALID_ARGUMENT in codes


def test_absurd_states_are_never_summed() -> None:
    good = PodSeries("good")
    good.observe(BucketState("p", "b", 1.0, 100, 50, 10, 0, 0), now=1.0, keep_s=5)
    good.observe(BucketState("p", "b", 2.0, 100, 50, 10, 40, 0), now=2.0, keep_s=5)
    absurd = PodSeries("absurd")
    try:
        parse_bucket_state(dumps({"schema": "openclaw.bucket/v1", "capacity": 1e308}))
    except BucketStateError as exc:
        absurd.fail(f"invalid: {exc}")
    agg = aggregate([good, absurd], now=2.0, window_s=1.0, fresh_for_s=3.0)
    assert agg.demand_per_s == 40.0  # the believable pod only: the other never answered

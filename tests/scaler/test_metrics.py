"""The scaler's /metrics: pod errors by reason per target, RPCs by the code clients got."""

from __future__ import annotations

import asyncio
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn

import grpc
import pytest
from prometheus_client import generate_latest

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.pod_errors import POD_ERROR_REASONS, PodErrorReason
from scaler.server import Scaler, start
from tests.scaler.conftest import ref, with_config

PodFactory = Callable[..., Awaitable[FakePod]]
POD_ERRORS = "openclaw_rating_scaler_pod_errors_total"
RPC = "openclaw_rating_scaler_rpc_total"


def test_every_reason_of_the_literal_is_listed() -> None:
    assert typing.get_args(PodErrorReason) == POD_ERROR_REASONS


@pytest.fixture
async def forgetful() -> AsyncIterator[Scaler]:
    """A scaler whose targets are forgotten as soon as forget_idle() runs."""
    running = await start(with_config(forget_after_s=0.0))
    yield running
    await running.stop()


async def test_pod_errors_are_counted_per_target_by_reason_and_forgotten_with_it(
    forgetful: Scaler, fake_pods: PodFactory
) -> None:
    good = await fake_pods()
    broken = [await fake_pods(behaviour=kind) for kind in ("error", "garbage")]
    locked = await fake_pods(required_token="secret")
    gone = await fake_pods()
    await gone.stop()
    so_ref = ref([good, *broken, locked, gone])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{forgetful.grpc_port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        await stub.GetMetricSpec(so_ref)
    [view] = forgetful.targets.views.values()
    await view.wait_cycle_after(view.cycles, 2.0)
    registry, label = forgetful.registry, view.target.label

    def errors(reason: str) -> float | None:
        return registry.get_sample_value(POD_ERRORS, {"target": label, "reason": reason})

    cycles = view.cycles
    assert cycles >= 2
    for reason in ("http_status", "invalid", "unauthorized", "connect"):
        assert errors(reason) == cycles, reason
    assert errors("timeout") == errors("too_large") == errors("protocol") == 0
    text = generate_latest(registry).decode()
    assert all(
        reason in text.split("pod_errors_total Failed polls")[1] for reason in POD_ERROR_REASONS
    )
    await forgetful.targets.forget_idle()
    assert errors("connect") is None
    assert f'target="{label}"' not in generate_latest(registry).decode()


async def test_an_unexpected_exception_is_counted_as_the_code_the_client_got(
    scaler: Scaler, stub: pb_grpc.ExternalScalerStub, fake_pods: PodFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    pod = await fake_pods()

    async def broken(*args: object) -> NoReturn:
        raise RuntimeError("a bug")

    monkeypatch.setattr(scaler.targets, "view_for", broken)
    codes = []
    for call in (stub.GetMetricSpec(ref([pod])), stub.StreamIsActive(ref([pod])).read()):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(call, 5.0)
        codes.append(caught.value.code())
    assert codes[0] == codes[1] != grpc.StatusCode.OK, codes
    count = scaler.registry.get_sample_value
    for method in ("GetMetricSpec", "StreamIsActive"):
        assert count(RPC, {"method": method, "code": codes[0].name}) == 1
        assert count(RPC, {"method": method, "code": "OK"}) == 0

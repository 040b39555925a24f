"""The scaler sends the bearer token from --pod-token-file to pods that want one."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.pod_client import TokenFile
from scaler.server import start
from tests.scaler.conftest import ref, with_config

PodFactory = Callable[..., Awaitable[FakePod]]


def test_token_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    token = TokenFile(path, check_every_s=0.0)
    assert token() == "first"
    path.write_text("second")
    os.utime(path, ns=(1, 1))  # a new mtime, as a Secret update gives
    assert token() == "second"
    path.unlink()
    assert token() == "second"  # a file briefly missing keeps the last token


@pytest.mark.parametrize(
    ("scaler_token", "accepted"),
    [
        pytest.param("s3cret", True, id="right-token"),
        pytest.param("wrong", False, id="wrong-token"),
        pytest.param(None, False, id="no-token"),
    ],
)
async def test_pods_requiring_a_token(
    tmp_path: Path, fake_pods: PodFactory, scaler_token: str | None, accepted: bool
) -> None:
    pod = await fake_pods(demand_per_s=10.0, required_token="s3cret")
    token_file = None
    if scaler_token is not None:
        token_file = tmp_path / "token"
        token_file.write_text(scaler_token)
    scaler = await start(with_config(pod_token_file=token_file))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
            request = pb.GetMetricsRequest(scaledObjectRef=ref([pod]))
            if accepted:
                await stub.GetMetricSpec(ref([pod]))
                await asyncio.sleep(0.5)
                value = (await stub.GetMetrics(request)).metricValues[0].metricValueFloat
                assert value == pytest.approx(10.0, rel=0.15)
                return
            for call in (stub.GetMetricSpec(ref([pod])), stub.GetMetrics(request)):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "unauthorized" in (caught.value.details() or "")
    finally:
        await scaler.stop()

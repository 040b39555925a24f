"""The scaler sends the bearer token from --pod-token-file to pods that want one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.config import ConfigError, load
from scaler.server import start
from tests.scaler.conftest import ref, with_config

PodFactory = Callable[..., Awaitable[FakePod]]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param("\n", "is empty", id="empty"),
        pytest.param("two words\n", "no bearer token", id="not-a-token"),
    ],
)
def test_an_unusable_token_file_stops_start_up_naming_the_flag(
    tmp_path: Path, content: str, problem: str
) -> None:
    """The rating service's rule for its own token file (tests/api/test_auth.py)."""
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"^--pod-token-file: .*{problem}"):
        load(["--pod-token-file", str(path)], {})
    with pytest.raises(
        ConfigError, match=r"^--pod-token-file \(from RATING_SCALER_POD_TOKEN_FILE\)"
    ):
        load([], {"RATING_SCALER_POD_TOKEN_FILE": str(path)})


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

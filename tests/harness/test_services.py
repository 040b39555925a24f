"""`harness.services`: the argv of each service, and real ones started from it."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import pytest

from harness import RatingApi, RatingScaler, StartError, start, start_async
from harness.services import Service


@pytest.mark.parametrize(
    ("service", "argv"),
    [
        pytest.param(
            RatingApi(port=1, admin_port=2),
            ["-m", "api", "--host", "127.0.0.1", "--port", "1", "--admin-port", "2"],
            id="api-defaults",
        ),
        pytest.param(
            RatingApi(
                port=1, admin_port=2, pod_name="p", bucket_capacity=1e12, bucket_rate=20,
                log_level="warning", extra=("--max-batch", "20"),
            ),
            [
                "-m", "api", "--host", "127.0.0.1", "--log-level", "warning", "--port", "1",
                "--admin-port", "2", "--pod-name", "p", "--bucket-capacity", "1000000000000.0",
                "--bucket-rate", "20", "--max-batch", "20",
            ],
            id="api-flags",
        ),
        pytest.param(
            RatingScaler(grpc_port=3, http_port=4),
            ["-m", "scaler", "--host", "127.0.0.1", "--grpc-port", "3", "--http-port", "4"],
            id="scaler-defaults",
        ),
        pytest.param(
            RatingScaler(
                grpc_port=3, http_port=4, poll_interval_s=0.5, pod_timeout_s=0.25,
                log_level="warning", extra=("--allowed-hosts", "127.0.0.1"),
            ),
            [
                "-m", "scaler", "--host", "127.0.0.1", "--log-level", "warning",
                "--grpc-port", "3", "--http-port", "4", "--poll-interval", "0.5",
                "--pod-timeout", "0.25", "--allowed-hosts", "127.0.0.1",
            ],
            id="scaler-flags",
        ),
    ],
)  # fmt: skip
def test_argv(service: Service, argv: list[str]) -> None:
    assert service.argv() == [sys.executable, *argv]


def test_ports_are_free_and_named_unless_given() -> None:
    api, scaler = RatingApi(), RatingScaler()
    assert set(api.ports) == {"public", "admin"}
    assert set(scaler.ports) == {"grpc", "http"}
    assert len({*api.ports.values(), *scaler.ports.values()}) == 4
    assert RatingApi(pod_name="pod-7").name == "pod-7"
    assert scaler.grpc_target == f"127.0.0.1:{scaler.grpc_port}"
    assert api.admin_address == f"127.0.0.1:{api.admin_port}"
    assert api.rate_url == f"http://127.0.0.1:{api.port}/v1/rate"


def status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)


def test_start_gives_a_ready_rating_api_and_scaler(tmp_path: Path) -> None:
    api = start(RatingApi(bucket_rate=7, log_level="warning"), tmp_path / "api.log")
    scaler = start(RatingScaler(poll_interval_s=0.5, pod_timeout_s=0.2), tmp_path / "s.log")
    assert status(api.url("public", "/readyz")) == 200
    assert status(api.url("admin", "/metrics")) == 200
    assert status(scaler.url("http", "/healthz")) == 200
    assert (api.name, scaler.name) == ("rating-api", "rating-scaler")
    assert (api.stop(), scaler.stop()) == (0, 0)


async def test_start_async_gives_a_ready_rating_api(tmp_path: Path) -> None:
    api = await start_async(RatingApi(pod_name="pod-a"), tmp_path / "api.log", name="first")
    assert api.name == "first"
    assert status(api.url("public", "/readyz")) == 200
    assert await api.stop_async() == 0


def test_a_service_that_refuses_its_flags_raises_start_error(tmp_path: Path) -> None:
    with pytest.raises(StartError, match="exited with 2") as raised:
        start(RatingApi(bucket_rate=-3), tmp_path / "api.log")
    assert "--bucket-rate" in raised.value.log_tail

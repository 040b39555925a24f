"""`--admin-token-file` guards `/v1/bucket`: a real rating-api, then the real scaler."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from api.auth import BearerAuth
from common.token_file import TokenFile
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from tests.procs import Proc, start_rating_api, start_scaler
from tests.scaler.test_process import keda_ref

TOKEN = "s3cret-admin-token"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "admin-token"
    path.write_text(TOKEN + "\n")  # a trailing newline, as `kubectl create secret` files have
    return path


@pytest.fixture
def guarded_pod(tmp_path: Path, token_file: Path) -> Iterator[Proc]:
    proc = start_rating_api(
        tmp_path / "logs", "--admin-token-file", str(token_file), name="guarded-pod"
    )
    yield proc
    proc.kill()


def get(url: str, authorization: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("Bearer wrong-token", id="wrong-token"),
        pytest.param(f"Bearer {TOKEN}x", id="token-with-more"),
        pytest.param(f"Basic {TOKEN}", id="other-scheme"),
        pytest.param("Bearer", id="scheme-alone"),
    ],
)
def test_bucket_without_the_token_is_401_problem(
    guarded_pod: Proc, authorization: str | None
) -> None:
    status, headers, body = get(guarded_pod.url("admin", "/v1/bucket"), authorization)
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert headers["www-authenticate"].startswith("Bearer")
    problem = orjson.loads(body)
    assert problem["status"] == 401
    assert problem["type"].endswith(":unauthorized")
    assert "granted_total" not in problem


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_bucket_with_the_token_answers_the_state(guarded_pod: Proc, scheme: str) -> None:
    status, _, body = get(guarded_pod.url("admin", "/v1/bucket"), f"{scheme} {TOKEN}")
    assert status == 200
    assert orjson.loads(body)["pod"] == "guarded-pod"


def test_metrics_and_the_public_port_need_no_token(guarded_pod: Proc) -> None:
    assert get(guarded_pod.url("admin", "/metrics"))[0] == 200
    assert get(guarded_pod.url("public", "/healthz"))[0] == 200


def test_a_new_token_in_the_file_replaces_the_old(guarded_pod: Proc, token_file: Path) -> None:
    url = guarded_pod.url("admin", "/v1/bucket")
    replacement = token_file.with_name("new-token")
    replacement.write_text("rotated-token")
    os.replace(replacement, token_file)  # atomic, as a Secret update is
    deadline = time.monotonic() + 10
    while get(url, "Bearer rotated-token")[0] != 200:
        assert time.monotonic() < deadline, "the rotated token was never accepted"
        time.sleep(0.2)
    assert get(url, f"Bearer {TOKEN}")[0] == 401


async def test_no_token_read_lets_nobody_in_not_even_an_empty_bearer(tmp_path: Path) -> None:
    reached: list[str] = []
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    guard = BearerAuth(app, TokenFile(tmp_path / "not-there"), frozenset({"/v1/bucket"}))
    scope = {"type": "http", "path": "/v1/bucket", "headers": [(b"authorization", b"Bearer ")]}
    await guard(scope, receive, send)
    assert reached == []
    assert sent[0]["status"] == 401


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot be read", id="missing"),
        pytest.param("\n", "is empty", id="empty"),
        pytest.param("two words\n", "no bearer token", id="not-a-token"),
    ],
)
def test_an_unusable_token_file_stops_start_up_naming_the_flag(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "admin-token"
    if content is not None:
        path.write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "api", "--admin-token-file", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--admin-token-file [RATING_API_ADMIN_TOKEN_FILE]" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("scaler_token", "accepted"),
    [pytest.param(TOKEN, True, id="right-token"), pytest.param("wrong", False, id="wrong-token")],
)
def test_the_real_scaler_reads_a_guarded_pod_only_with_the_token(
    tmp_path: Path, guarded_pod: Proc, scaler_token: str, accepted: bool
) -> None:
    scaler_token_file = tmp_path / "scaler-token"
    scaler_token_file.write_text(scaler_token)
    scaler = start_scaler(
        tmp_path / "scaler",
        "--poll-interval", "0.5", "--pod-timeout", "0.2",
        "--pod-token-file", str(scaler_token_file),
    )  # fmt: skip
    try:
        with grpc.insecure_channel(f"127.0.0.1:{scaler.ports['grpc']}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
            ref = keda_ref(guarded_pod)
            request = pb.GetMetricsRequest(scaledObjectRef=ref)
            if accepted:
                stub.GetMetricSpec(ref, timeout=5)
                answer = _metrics_once_polled(stub, request)
                assert answer.metricValues[0].metricValueFloat >= 0.0
            else:
                # No pod ever answers, so the target per pod stays unknown too.
                with pytest.raises(grpc.RpcError) as spec_refusal:
                    stub.GetMetricSpec(ref, timeout=5)
                assert spec_refusal.value.code() == grpc.StatusCode.UNAVAILABLE
                code, details = _refusal_once_polled(stub, request)
                assert code == grpc.StatusCode.UNAVAILABLE
                assert "unauthorized" in details
    finally:
        scaler.kill()


def _metrics_once_polled(
    stub: pb_grpc.ExternalScalerStub, request: pb.GetMetricsRequest
) -> pb.GetMetricsResponse:
    deadline = time.monotonic() + 10
    while True:
        try:
            answer: pb.GetMetricsResponse = stub.GetMetrics(request, timeout=5)
            return answer
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _refusal_once_polled(
    stub: pb_grpc.ExternalScalerStub, request: pb.GetMetricsRequest
) -> tuple[grpc.StatusCode, str]:
    """The error of GetMetrics once the poller has heard from the pod; never an answer."""
    deadline = time.monotonic() + 10
    while True:
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetMetrics(request, timeout=5)
        details = caught.value.details() or ""
        if "unauthorized" in details or time.monotonic() > deadline:
            return caught.value.code(), details
        time.sleep(0.2)

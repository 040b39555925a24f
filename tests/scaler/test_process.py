"""`rating-scaler` as a real process: flags, health, SIGTERM, and real rating pods under load."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.config import FLAGS
from tests.conftest import RatingPodFactory
from tests.procs import Proc, start_scaler

README = Path(__file__).resolve().parents[2] / "README.md"
RATE_BODY = '{"items":[{"id":"r1","up":42,"down":7}]}'


@pytest.fixture
def scaler_proc(tmp_path: Path) -> Iterator[Proc]:
    proc = start_scaler(tmp_path, "--poll-interval", "0.5", "--pod-timeout", "0.2")
    yield proc
    proc.kill()


def channel(proc: Proc) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{proc.ports['grpc']}")


def keda_ref(*pods: Proc, **metadata: str) -> pb.ScaledObjectRef:
    endpoints = ",".join(f"127.0.0.1:{pod.ports['admin']}" for pod in pods)
    keys = {"scalerAddress": "rating-scaler.edge.svc.cluster.local:6000", "endpoints": endpoints}
    return pb.ScaledObjectRef(name="rating-api", namespace="edge", scalerMetadata=keys | metadata)


def test_help_documents_every_flag_its_variable_and_one_default() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "scaler", "--help"], capture_output=True, text=True, check=True
    ).stdout
    text = " ".join(out.split())
    assert "None" not in text and "(default" not in text
    for flag in FLAGS:
        [entry] = re.findall(rf"--{flag.name} {flag.metavar} (.*?\])", text)
        assert entry.count("default") == 1, entry
        assert f"[env {flag.env}, default " in entry


def test_readme_flag_table_names_every_flag() -> None:
    section = README.read_text().split("## The scaler")[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("| `--")]
    named = set(re.findall(r"`--([a-z-]+)`", "\n".join(table)))
    assert named == {flag.name for flag in FLAGS}


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        pytest.param(["--poll-interval", "fast"], {}, "--poll-interval", id="flag"),
        pytest.param([], {"RATING_SCALER_POD_TIMEOUT": "-1"}, "--pod-timeout", id="env"),
        pytest.param(["--pod-timeout", "2"], {}, "--pod-timeout", id="timeout-over-interval"),
        pytest.param(["--grpc-port", "70000"], {}, "--grpc-port", id="port"),
        pytest.param(["--tls-cert", "/nonexistent.pem"], {}, "--tls-cert", id="missing-file"),
        pytest.param(["--dns-server", "a:b:c:x"], {}, "--dns-server", id="dns"),
    ],
)
def test_bad_configuration_stops_with_a_message_naming_the_flag(
    args: list[str], env: dict[str, str], named: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scaler", *args], capture_output=True, text=True,
        env={**os.environ, **env}, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert named in result.stderr


def test_health_services_and_reflection(scaler_proc: Proc) -> None:
    with channel(scaler_proc) as chan:
        health = health_pb2_grpc.HealthStub(chan)
        for service in ("", "liveness", "readiness", "externalscaler.ExternalScaler"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
        reflect = reflection_pb2_grpc.ServerReflectionStub(chan)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [answer] = list(reflect.ServerReflectionInfo(iter([request]), timeout=5))
        names = {service.name for service in answer.list_services_response.service}
        assert {"externalscaler.ExternalScaler", "grpc.health.v1.Health"} <= names


def test_readiness_follows_data_freshness(scaler_proc: Proc, rating_pod: RatingPodFactory) -> None:
    pod = rating_pod()
    with channel(scaler_proc) as chan:
        stub = pb_grpc.ExternalScalerStub(chan)  # type: ignore[no-untyped-call]
        health = health_pb2_grpc.HealthStub(chan)
        stub.GetMetricSpec(keda_ref(pod), timeout=5)
        pod.kill()
        deadline = time.monotonic() + 10
        status = health_pb2.HealthCheckResponse.SERVING
        while time.monotonic() < deadline and status == health_pb2.HealthCheckResponse.SERVING:
            time.sleep(0.2)
            status = health.Check(
                health_pb2.HealthCheckRequest(service="readiness"), timeout=5
            ).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        liveness = health.Check(health_pb2.HealthCheckRequest(service="liveness"), timeout=5)
        assert liveness.status == health_pb2.HealthCheckResponse.SERVING


def test_sigterm_closes_streams_and_exits_zero(
    scaler_proc: Proc, rating_pod: RatingPodFactory
) -> None:
    pod = rating_pod()
    with channel(scaler_proc) as chan:
        stub = pb_grpc.ExternalScalerStub(chan)  # type: ignore[no-untyped-call]
        stream = stub.StreamIsActive(keda_ref(pod), timeout=30)
        first = next(stream)
        assert first.result is False  # an idle pod
        scaler_proc.signal(signal.SIGTERM)
        with pytest.raises(StopIteration):
            next(stream)  # the stream ends cleanly, not with an error
        assert scaler_proc.popen.wait(15) == 0
    assert "stopped" in scaler_proc.log()


def offer_load(pod: Proc, rate_per_s: int, seconds: int) -> subprocess.Popen[bytes]:
    """`hey` at a fixed rate: 2 workers x rate/2 queries per second, bounded in time."""
    return subprocess.Popen(
        [
            "hey", "-z", f"{seconds}s", "-c", "2", "-q", str(rate_per_s // 2), "-m", "POST",
            "-T", "application/json", "-d", RATE_BODY, pod.url("public", "/v1/rate"),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_demand_matches_offered_load_on_real_pods(
    scaler_proc: Proc, rating_pod: RatingPodFactory
) -> None:
    """Three real rating-api pods under real HTTP load; 40 req/s each, one pod over its bucket."""
    pods = [rating_pod("--bucket-rate", "20", name=f"pod-{i}") for i in range(3)]
    loads = [offer_load(pod, 40, 8) for pod in pods]
    try:
        with channel(scaler_proc) as chan:
            stub = pb_grpc.ExternalScalerStub(chan)  # type: ignore[no-untyped-call]
            ref = keda_ref(*pods, window="2")
            spec = stub.GetMetricSpec(ref, timeout=5)
            time.sleep(5)
            value = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref), timeout=5)
            active = stub.IsActive(ref, timeout=5)
    finally:
        for load in loads:
            load.wait(30)
    assert spec.metricSpecs[0].targetSizeFloat == pytest.approx(20 * 0.8)
    # demand counts the 429s too: 3 x 40 req/s offered, far above the 3 x 20/s refill
    assert value.metricValues[0].metricValueFloat == pytest.approx(120.0, rel=0.15)
    assert active.result is True

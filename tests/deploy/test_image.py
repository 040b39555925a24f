"""Both commands from the built image, run as the manifests run them: the image's
numeric user, a read-only root, a tmpfs on /tmp, no capabilities (runc, `e2e/oci.py`).

The image is what `python -m e2e.image` built for the current sources; without it these
tests skip (`python -m e2e.image --check` builds it and runs them, never skipping).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from e2e import image, oci
from harness.ready import free_port, wait_http_ok
from tests.api.httpclient import post_json, request

UID_GID = (10001, 10001)
BATCH = {"items": [{"id": "agent-42", "up": 42, "down": 7}]}


def _unavailable(reason: str) -> None:
    if os.environ.get("OPENCLAW_E2E_IMAGE_REQUIRED"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """The record of the image built for these sources (skips when there is none)."""
    key = image.image_key()
    record = image.read_record(key)
    if record is None:
        _unavailable(f"no image built for these sources (key {key}): run python -m e2e.image")
    if os.geteuid() != 0 or shutil.which(oci.RUNTIME) is None:
        _unavailable(f"running the image needs root and {oci.RUNTIME}")
    assert record is not None
    return record


@pytest.fixture(scope="module")
def config(built: dict[str, Any]) -> oci.ImageConfig:
    return oci.read_image_config(Path(built["layout"]), built["layout_tag"])


Bundle = Callable[..., Path]


@pytest.fixture
def bundle(built: dict[str, Any], config: oci.ImageConfig, tmp_path: Path) -> Bundle:
    """A bundle running the given command line (and environment) on the image's rootfs."""

    def make(*args: str, **env: str) -> Path:
        spec = oci.runtime_spec(config, Path(built["rootfs"]), args, env=env)
        return oci.write_bundle(tmp_path / f"bundle-{time.monotonic_ns()}", spec)

    return make


def _name(what: str) -> str:
    return f"openclaw-test-{what}-{os.getpid()}-{time.monotonic_ns()}"


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Callable[..., oci.Container]]:
    started: list[oci.Container] = []

    def start(what: str, bundle: Path, ports: dict[str, int]) -> oci.Container:
        log = tmp_path / f"{what}.log"
        started.append(oci.Container(_name(what), bundle, log, ports).start())
        return started[-1]

    yield start
    for running in started:
        running.stop()


def test_image_config_is_what_the_manifests_expect(config: oci.ImageConfig) -> None:
    assert config.user == UID_GID
    assert config.cmd == ("rating-api",)
    assert config.entrypoint == ()
    assert any(entry.startswith("PATH=/opt/venv/bin:") for entry in config.env)


def test_root_is_read_only_and_tmp_writable(bundle: Bundle) -> None:
    script = (
        "import os; print(os.getuid(), os.getgid())\n"
        "open('/tmp/probe', 'w').write('ok')\n"
        "open('/opt/venv/probe', 'w')\n"
    )
    result = oci.run_once(bundle("python3", "-c", script), _name("readonly"))
    assert result.stdout.split() == [str(n) for n in UID_GID], result.stdout + result.stderr
    assert "[Errno 30] Read-only file system: '/opt/venv/probe'" in result.stderr, result.stderr
    assert result.returncode == 1


@pytest.mark.parametrize("command", ["rating-api", "rating-scaler"])
def test_help(bundle: Bundle, command: str) -> None:
    result = oci.run_once(bundle(command, "--help"), _name("help"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"usage: {command} "), result.stdout


def test_rating_api_answers_and_stops_on_sigterm(
    bundle: Bundle, container: Callable[..., oci.Container]
) -> None:
    ports = {"public": free_port(), "admin": free_port()}
    argv = ["rating-api", "--host", "127.0.0.1", "--port", str(ports["public"])]
    argv += ["--admin-port", str(ports["admin"])]
    api = container("rating-api", bundle(*argv, POD_NAME="rating-api-image"), ports)
    wait_http_ok(api.child.url("public", "/readyz"), api.child)
    reply = post_json(api.child.url("public", "/v1/rate"), BATCH)
    assert reply.status == 200, reply.body
    (votes,) = reply.json()["ratings"]
    assert (votes["id"], votes["kind"]) == ("agent-42", "votes")
    assert votes["lower_bound"] == pytest.approx(0.7333, abs=5e-5)
    state = request(api.child.url("admin", "/v1/bucket")).json()
    assert state["pod"] == "rating-api-image"
    assert state["granted_total"] >= 1
    # Python is PID 1 in the container: SIGTERM only stops it if the server handles it.
    assert api.stop() == 0, api.child.log_tail()


def test_rating_scaler_answers_grpc_health(
    bundle: Bundle, container: Callable[..., oci.Container]
) -> None:
    ports = {"grpc": free_port(), "http": free_port()}
    argv = ["rating-scaler", "--host", "127.0.0.1", "--grpc-port", str(ports["grpc"])]
    argv += ["--http-port", str(ports["http"])]
    scaler = container("rating-scaler", bundle(*argv), ports)
    wait_http_ok(scaler.child.url("http", "/healthz"), scaler.child)
    with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "liveness", "readiness"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
    assert scaler.stop() == 0, scaler.child.log_tail()

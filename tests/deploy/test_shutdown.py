"""The rating-api Deployment's shutdown settings, on a real rating-api process.

kubelet runs the preStop sleep, then sends SIGTERM. With the environment the
manifests give the container, a keep-alive client that still sends to the pod after
that is answered, and told `Connection: close`, so it moves to another pod.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.httpclient import request
from tests.api.test_limits import rate_request, read_response
from tests.api.test_server import wait_for
from tests.deploy.kube import BASE, containers, named, render
from tests.procs import Proc, start_rating_api

# What the process is given as it is in the pod; ports and host are the test's own.
SETTINGS = ("RATING_API_SHUTDOWN_DELAY", "RATING_API_DRAIN_TIMEOUT")
WITHIN_THE_DELAY_S = 1.0


def manifest_env() -> dict[str, str]:
    (container,) = containers(named(render(BASE), "Deployment", "rating-api"))
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    return {name: env[name] for name in SETTINGS if name in env}


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Proc]:
    proc = start_rating_api(
        tmp_path / "logs", "--bucket-capacity", "1e9", "--bucket-rate", "1e9", env=manifest_env()
    )
    yield proc
    proc.kill()


def test_the_manifests_switch_the_drain_on() -> None:
    assert float(manifest_env().get("RATING_API_SHUTDOWN_DELAY", "0")) > 2 * WITHIN_THE_DELAY_S


def test_a_keep_alive_request_after_sigterm_is_answered_with_connection_close(pod: Proc) -> None:
    with socket.create_connection(("127.0.0.1", pod.ports["public"]), timeout=10) as sock:
        sock.sendall(rate_request())
        status, headers, _ = read_response(sock)
        assert (status, headers.get("connection", "keep-alive")) == (200, "keep-alive")
        pod.signal(signal.SIGTERM)
        wait_for("/readyz answers 503", lambda: request(pod.url("public", "/readyz")).status == 503)
        # Well into the delay, and well past the 0.1 s in which a server without one
        # stops listening and closes its idle connections.
        time.sleep(WITHIN_THE_DELAY_S)
        sock.sendall(rate_request())
        status, headers, body = read_response(sock)
    assert status == 200 and body, "the pod answers while it drains"
    assert headers["connection"] == "close", "and tells the client to go elsewhere"
    # A client that reconnects before every proxy has dropped the pod is served too.
    with socket.create_connection(("127.0.0.1", pod.ports["public"]), timeout=10) as sock:
        sock.sendall(rate_request())
        status, headers, _ = read_response(sock)
    assert (status, headers["connection"]) == (200, "close")
    assert pod.popen.poll() is None, "still serving within the shutdown delay"

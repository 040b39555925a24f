"""Process life of `rating-api`: start-up log, refusal to start, graceful shutdown on SIGTERM."""

from __future__ import annotations

import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.api.httpclient import request
from tests.conftest import RatingPodFactory
from tests.procs import Proc, free_port, spawn

BODY = orjson.dumps({"items": [{"id": "a", "up": 3, "down": 1}]})


def wait_for(condition: str, check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll `check()` until it is true; the timeout only bounds a hang, it measures nothing."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {condition}")
        time.sleep(0.02)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return True
    return False


def send_head_and_half_body(port: int) -> socket.socket:
    """A POST /v1/rate that is in flight: headers and half the body sent, the rest held back."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST /v1/rate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode()
    sock.sendall(head + BODY[: len(BODY) // 2])
    return sock


def read_status(sock: socket.socket) -> int:
    reply = b""
    while b"\r\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return int(reply.split(b" ", 2)[1])


def test_logs_its_effective_config_in_one_line(rating_pod: RatingPodFactory) -> None:
    pod = rating_pod("--bucket-rate", "7", env={"RATING_API_MAX_BATCH": "12"})
    starting = [line for line in pod.log().splitlines() if "rating-api starting:" in line]
    assert len(starting) == 1
    assert "bucket-rate=7.0" in starting[0]
    assert "max-batch=12" in starting[0]
    assert f"port={pod.ports['public']}" in starting[0]


def test_sigterm_turns_readyz_503_then_keeps_serving_until_the_delay_ends(
    rating_pod: RatingPodFactory,
) -> None:
    pod = rating_pod("--shutdown-delay", "1.5")
    pod.signal(signal.SIGTERM)
    wait_for("/readyz answers 503", lambda: request(pod.url("public", "/readyz")).status == 503)
    assert request(pod.url("public", "/readyz")).json() == {"status": "draining"}
    assert request(pod.url("public", "/healthz")).status == 200
    rated = request(
        pod.url("public", "/v1/rate"), "POST", BODY, {"Content-Type": "application/json"}
    )
    assert rated.status == 200
    assert pod.popen.wait(timeout=15) == 0
    assert "SIGTERM" in pod.log()


def test_sigterm_lets_an_in_flight_request_finish_then_exits_0(
    rating_pod: RatingPodFactory,
) -> None:
    pod = rating_pod()
    sock = send_head_and_half_body(pod.ports["public"])
    with sock:
        time.sleep(0.2)  # lets the server read the head, so the request is in flight
        pod.signal(signal.SIGTERM)
        wait_for("the public port closes", lambda: refuses_connections(pod.ports["public"]))
        assert pod.popen.poll() is None
        sock.sendall(BODY[len(BODY) // 2 :])
        assert read_status(sock) == 200
    assert pod.popen.wait(timeout=15) == 0


def test_a_second_signal_stops_at_once(rating_pod: RatingPodFactory) -> None:
    pod = rating_pod("--drain-timeout", "60")
    with send_head_and_half_body(pod.ports["public"]):
        time.sleep(0.2)
        pod.signal(signal.SIGTERM)
        wait_for("the public port closes", lambda: refuses_connections(pod.ports["public"]))
        pod.signal(signal.SIGINT)
        assert pod.popen.wait(timeout=10) == 0
    assert "again: stopping now" in pod.log()


@pytest.mark.parametrize("which", ["--port", "--admin-port"])
def test_a_port_in_use_stops_start_up_with_a_clear_error(which: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {"--port": free_port(), "--admin-port": free_port()}
        ports[which] = taken.getsockname()[1]
        argv = [sys.executable, "-m", "api", "--host", "127.0.0.1"]
        argv += [arg for flag, port in ports.items() for arg in (flag, str(port))]
        proc: Proc = spawn("rating-api", argv, tmp_path)
        assert proc.popen.wait(timeout=30) == 1
    assert f"{which}: cannot listen on 127.0.0.1:{ports[which]}" in proc.log()


def test_a_bad_flag_exits_2_naming_it(tmp_path: Path) -> None:
    proc = spawn("rating-api", [sys.executable, "-m", "api", "--bucket-rate", "-3"], tmp_path)
    assert proc.popen.wait(timeout=30) == 2
    assert "--bucket-rate [RATING_API_BUCKET_RATE] must be > 0" in proc.log()

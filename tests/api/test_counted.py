"""Answers the server gives before the app runs are problems, and `requests_total` counts them.

A real rating-api over raw sockets: a request that is not HTTP, one too slow, one with a
head too large, one over the connection limit; each costs its client a request, so each
must show in the counter the dashboards and alerts read.
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from collections.abc import Callable, Iterator

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_limits import assert_problem, connect, rate_request, read_response
from tests.procs import Proc, start_rating_api

REQUESTS = "openclaw_rating_api_requests"


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_rating_api(
        tmp_path_factory.mktemp("logs"),
        "--bucket-capacity", "1e9", "--bucket-rate", "1e9",
        "--max-header-bytes", "2048", "--request-timeout", "0.5",
        "--keep-alive-timeout", "0.5", "--max-connections", "4",
        name="counted-pod",
    )  # fmt: skip
    yield proc
    proc.stop()


def requests_by_code(pod: Proc) -> dict[str, float]:
    url = f"http://127.0.0.1:{pod.ports['admin']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == REQUESTS:
            for sample in family.samples:
                if sample.name == f"{REQUESTS}_total":
                    counts[sample.labels["code"]] = sample.value
    return counts


def counted_after(pod: Proc, action: Callable[[], None]) -> dict[str, float]:
    """What `action` added to `requests_total`, by code, once the server has counted it."""
    before = requests_by_code(pod)
    action()
    deadline = time.monotonic() + 5
    while True:
        after = requests_by_code(pod)
        added = {code: n - before.get(code, 0) for code, n in after.items()}
        added = {code: n for code, n in added.items() if n}
        if added or time.monotonic() > deadline:
            return added
        time.sleep(0.05)


def exchange(pod: Proc, request: bytes, expected: int) -> Callable[[], None]:
    def action() -> None:
        with connect(pod) as sock:
            sock.sendall(request)
            assert_problem(*read_response(sock), expected)

    return action


NOT_HTTP = [
    pytest.param(b"HELLO\r\n\r\n", id="no-method"),
    pytest.param(b"GET /healthz HTTP/1.1\r\nBad Header: 1\r\n\r\n", id="space-in-name"),
    pytest.param(b"GET /h\x00 HTTP/1.1\r\n\r\n", id="nul-in-target"),
    pytest.param(
        b"POST /v1/rate HTTP/1.1\r\nContent-Length: \xd9\xa1\xd9\xa2\r\n\r\n" + b"x" * 12,
        id="content-length-arabic-indic",
    ),
    pytest.param(b"POST /v1/rate HTTP/1.1\r\nContent-Length: 1_0\r\n\r\n", id="cl-underscore"),
    pytest.param(
        b"POST /v1/rate HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        id="two-lengths",
    ),
]


@pytest.mark.parametrize("request_bytes", NOT_HTTP)
def test_a_request_that_is_not_http_gets_a_problem_400_and_is_counted(
    pod: Proc, request_bytes: bytes
) -> None:
    def action() -> None:
        with connect(pod) as sock:
            sock.sendall(request_bytes)
            status, headers, body = read_response(sock)
            assert_problem(status, headers, body, 400)
            assert orjson.loads(body)["type"].endswith(":malformed-request")
            assert headers["connection"] == "close"

    assert counted_after(pod, action) == {"400": 1}


def test_a_head_too_slow_gets_408_and_is_counted(pod: Proc) -> None:
    request = b"POST /v1/rate HTTP/1.1\r\nHost: t\r\n"  # and nothing more
    assert counted_after(pod, exchange(pod, request, 408)) == {"408": 1}


def test_a_body_too_slow_gets_408_and_is_counted(pod: Proc) -> None:
    request = rate_request(b'{"it', content_length=40)
    assert counted_after(pod, exchange(pod, request, 408)) == {"408": 1}


def test_a_head_too_large_gets_431_and_is_counted(pod: Proc) -> None:
    request = b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n"
    assert counted_after(pod, exchange(pod, request, 431)) == {"431": 1}


def test_a_request_over_the_connection_limit_gets_503_and_is_counted(pod: Proc) -> None:
    held = [connect(pod) for _ in range(4)]  # --max-connections 4

    def action() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the server has accepted the held ones
            with connect(pod) as sock:
                sock.sendall(rate_request())
                status, headers, body = read_response(sock)
            if status == 503:
                assert_problem(status, headers, body, 503)
                return
        raise AssertionError("never refused")

    try:
        added = counted_after(pod, action)
    finally:
        for sock in held:
            sock.close()
    assert set(added) <= {"200", "503"}  # 200s while the server still accepted the held ones
    assert added["503"] == 1


def test_an_idle_connection_closed_silently_counts_nothing(pod: Proc) -> None:
    def action() -> None:
        with connect(pod) as sock:
            sock.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""  # closed by the server, no answer

    assert counted_after(pod, action) == {}

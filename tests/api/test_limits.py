"""What one client can cost a real rating-api: oversized, slow and too many, over raw sockets."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.procs import Proc, start_rating_api

BODY = b'{"items":[{"id":"r1","up":3,"down":1}]}'


@pytest.fixture(scope="module")
def strict_pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_rating_api(
        tmp_path_factory.mktemp("logs"),
        "--bucket-capacity", "1e9", "--bucket-rate", "1e9",
        "--max-body-bytes", "4096", "--max-header-bytes", "4096",
        "--request-timeout", "1", "--keep-alive-timeout", "1",
        "--max-connections", "8",
        name="strict-pod",
    )  # fmt: skip
    yield proc
    proc.stop()


def connect(pod: Proc) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", pod.ports["public"]), timeout=10)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed (EOF or reset), within the socket's timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def rate_request(body: bytes = BODY, content_length: int | None = None) -> bytes:
    length = len(body) if content_length is None else content_length
    return (
        b"POST /v1/rate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    ) + body


def assert_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> None:
    assert status == expected, body
    assert headers["content-type"] == "application/problem+json"
    assert orjson.loads(body)["status"] == expected


def assert_serves(pod: Proc) -> None:
    with connect(pod) as sock:
        sock.sendall(rate_request())
        status, _, _ = read_response(sock)
    assert status == 200


def test_a_declared_oversized_body_is_refused_before_it_is_sent(strict_pod: Proc) -> None:
    with connect(strict_pod) as sock:
        sock.sendall(rate_request(b"", content_length=100 * 1024 * 1024))  # the head alone
        status, headers, body = read_response(sock)
        assert_problem(status, headers, body, 413)
        assert headers["connection"] == "close"
        assert closed_by_server(sock)


def test_an_undeclared_oversized_chunked_body_is_refused(strict_pod: Proc) -> None:
    head = (
        b"POST /v1/rate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (2048, b" " * 2048)
    with connect(strict_pod) as sock:
        sock.sendall(head + chunk * 3)  # 6 KiB, over the 4 KiB limit, and no end
        status, headers, body = read_response(sock)
    assert_problem(status, headers, body, 413)


def test_a_body_trickled_slower_than_the_timeout_gets_408_and_the_connection_closes(
    strict_pod: Proc,
) -> None:
    with connect(strict_pod) as sock:
        sock.sendall(rate_request(BODY[:5], content_length=len(BODY)))
        status, headers, body = read_response(sock)  # the rest never comes
        assert_problem(status, headers, body, 408)
        assert closed_by_server(sock)
    assert_serves(strict_pod)


def test_a_head_trickled_slower_than_the_timeout_gets_408(strict_pod: Proc) -> None:
    started_s = time.monotonic()
    with connect(strict_pod) as sock:
        sock.sendall(b"POST /v1/rate HTTP/1.1\r\nHost: t\r\n")
        # A header every 0.2 s: each byte would restart a keep-alive timer, not this deadline.
        while not select.select([sock], [], [], 0.2)[0]:
            assert time.monotonic() - started_s < 10, "the server waited for the head forever"
            sock.sendall(b"X-Slow: 1\r\n")
        status, headers, body = read_response(sock)
        assert_problem(status, headers, body, 408)
        assert closed_by_server(sock)


def test_an_idle_keep_alive_connection_is_closed_by_the_server(strict_pod: Proc) -> None:
    with connect(strict_pod) as sock:
        sock.sendall(rate_request())
        status, headers, _ = read_response(sock)
        assert status == 200
        assert headers.get("connection") != "close"
        sock.settimeout(5)  # well past --keep-alive-timeout 1
        assert closed_by_server(sock)


def test_a_connection_that_never_sends_is_closed(strict_pod: Proc) -> None:
    with connect(strict_pod) as sock:
        sock.settimeout(5)
        assert closed_by_server(sock)


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 1024 * 1024, id="one-huge-line"),
        pytest.param(
            b"GET /healthz HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 5000 + b"\r\n", id="many-headers"
        ),
        pytest.param(b"GET /" + b"a" * 64 * 1024 + b" HTTP/1.1\r\n\r\n", id="huge-url"),
    ],
)
def test_a_huge_request_head_gets_431_and_the_connection_closes(
    strict_pod: Proc, head: bytes
) -> None:
    with connect(strict_pod) as sock:
        # The server may close before it all arrives; its answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        status, headers, body = read_response(sock)
        assert_problem(status, headers, body, 431)
        assert closed_by_server(sock)
    assert_serves(strict_pod)


def test_a_head_within_the_limit_is_served(strict_pod: Proc) -> None:
    with connect(strict_pod) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Fine: " + b"a" * 3000 + b"\r\n\r\n")
        status, _, _ = read_response(sock)
    assert status == 200


def test_connections_over_the_limit_get_503_and_service_resumes(strict_pod: Proc) -> None:
    held = [connect(strict_pod) for _ in range(8)]  # --max-connections 8
    try:
        status, headers, body = _request_until_refused(strict_pod)
        assert_problem(status, headers, body, 503)
        assert headers["connection"] == "close"
        # uvicorn refuses every request while the limit is reached, on old connections too.
        held[0].sendall(rate_request())
        assert read_response(held[0])[0] == 503
    finally:
        for sock in held:
            sock.close()
    _wait_until_serving(strict_pod)


def _wait_until_serving(pod: Proc) -> None:
    deadline = time.monotonic() + 10
    while True:  # the server notices the closes as its loop gets to them
        try:
            assert_serves(pod)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_admin_port_answers_healthz_while_the_public_port_is_full(strict_pod: Proc) -> None:
    """Where the liveness probe goes: a pod at --max-connections is busy, not dead."""
    held = [connect(strict_pod) for _ in range(8)]  # --max-connections 8
    try:
        assert _request_until_refused(strict_pod)[0] == 503
        with connect(strict_pod) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(sock)[0] == 503, "the public /healthz is refused too"
        admin = socket.create_connection(("127.0.0.1", strict_pod.ports["admin"]), timeout=10)
        with admin:
            admin.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            status, headers, body = read_response(admin)
        assert (status, orjson.loads(body)) == (200, {"status": "ok"})
        assert headers["content-type"] == "application/json"
    finally:
        for sock in held:
            sock.close()
    _wait_until_serving(strict_pod)


def _request_until_refused(pod: Proc) -> tuple[int, dict[str, str], bytes]:
    """A request on one more connection, retried until the server has accepted the held ones."""
    deadline = time.monotonic() + 10
    while True:
        with connect(pod) as sock:
            sock.sendall(rate_request())
            answer = read_response(sock)
        if answer[0] != 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_a_trailing_slash_is_a_problem_404_not_a_redirect(strict_pod: Proc) -> None:
    with connect(strict_pod) as sock:
        request = rate_request().replace(b"/v1/rate ", b"/v1/rate/ ", 1)
        sock.sendall(request)
        status, headers, body = read_response(sock)
    assert_problem(status, headers, body, 404)
    assert "location" not in headers


OVERSIZED = b" " * (2 * 1024 * 1024)  # 512 times --max-body-bytes, within the drain bound


def chunked_rate_request(body: bytes) -> bytes:
    head = (
        b"POST /v1/rate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    return head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def wait_until_the_server_is_done(sock: socket.socket) -> None:
    """Until the server has sent FIN or RST: reading sooner could win the race with a RST."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    assert poller.poll(10_000), "the server neither closed nor half-closed"


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param([rate_request(OVERSIZED)], id="declared"),
        pytest.param([chunked_rate_request(OVERSIZED)], id="chunked"),
        pytest.param([rate_request(b"", len(OVERSIZED)), OVERSIZED], id="head-then-body"),
    ],
)
def test_an_oversized_body_gets_its_413_every_time(strict_pod: Proc, parts: list[bytes]) -> None:
    """The server answers before the body is read; its close must not reset the answer."""
    for attempt in range(1, 51):
        with connect(strict_pod) as sock:
            try:
                for part in parts:
                    sock.sendall(part)
                wait_until_the_server_is_done(sock)
                status, headers, body = read_response(sock)
                after_the_answer = sock.recv(1)
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise AssertionError(f"attempt {attempt}: reset: {exc!r}") from None
            assert_problem(status, headers, body, 413)
            assert headers["connection"] == "close"
            assert after_the_answer == b""  # FIN


def answered_413(pod: Proc) -> socket.socket:
    """A connection whose request declared a body far over the limit and got its 413."""
    sock = connect(pod)
    sock.sendall(rate_request(b"", content_length=10**12))
    assert_problem(*read_response(sock), 413)
    return sock


def test_a_client_that_keeps_sending_fast_is_closed_after_a_bounded_drain(
    strict_pod: Proc,
) -> None:
    chunk = b" " * 65536
    sent = 0
    with answered_413(strict_pod) as sock, pytest.raises((BrokenPipeError, ConnectionResetError)):
        while sent < 1024 * 1024 * 1024:
            sock.sendall(chunk)
            sent += len(chunk)
    # The server drops at most 4 MiB; loopback socket buffers hold a few MiB more.
    assert sent < 64 * 1024 * 1024
    assert_serves(strict_pod)


def test_a_client_that_keeps_sending_slowly_is_closed_after_a_bounded_drain(
    strict_pod: Proc,
) -> None:
    started_s = time.monotonic()
    with answered_413(strict_pod) as sock, pytest.raises((BrokenPipeError, ConnectionResetError)):
        while time.monotonic() - started_s < 30:  # the server lingers for 2 s at most
            sock.sendall(b" " * 1024)
            time.sleep(0.1)
    assert_serves(strict_pod)

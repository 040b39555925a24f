"""`harness.ready`: waiting for a real child to answer, and failing with its log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import (
    Child,
    StartError,
    free_port,
    ready,
    spawn,
    wait_http_ok,
    wait_http_ok_async,
    wait_log_line,
)
from harness.ready import EPHEMERAL_RANGE

# A server that answers 200 to GET /ok, and to a POST whose body is `{"ping": 1}`.
SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ok?x=1" or self.path == "/ok" else 404)
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        json = self.headers["Content-Type"] == "application/json"
        self.send_response(200 if json and body == b'{"ping": 1}' else 400)
        self.end_headers()

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@pytest.fixture
def server(tmp_path: Path) -> tuple[Child, str]:
    port = free_port()
    child = spawn("server", [sys.executable, "-c", SERVER, str(port)], tmp_path / "s.log")
    return child, f"http://127.0.0.1:{port}"


def test_free_port_can_be_bound_on_loopback() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


def test_free_ports_lie_below_the_kernels_ephemeral_range_and_never_repeat() -> None:
    ephemeral_low = int(Path(EPHEMERAL_RANGE).read_text().split()[0])
    ports = [free_port() for _ in range(300)]
    assert max(ports) < ephemeral_low
    assert len(set(ports)) == len(ports)


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        tries = iter([busy, busy, busy + 1])
        monkeypatch.setattr(ready, "_OUR_PORTS", (busy, busy + 2))
        monkeypatch.setattr(ready._random, "randrange", lambda low, high: next(tries))
        assert free_port() == busy + 1


def test_wait_http_ok_returns_once_it_answers(server: tuple[Child, str]) -> None:
    child, base = server
    wait_http_ok(f"{base}/ok?x=1", child)
    wait_http_ok(f"{base}/post", child, body=b'{"ping": 1}')
    assert child.running
    child.stop()


async def test_wait_http_ok_async_returns_once_it_answers(server: tuple[Child, str]) -> None:
    child, base = server
    await wait_http_ok_async(f"{base}/ok?x=1", child)
    assert child.running
    await child.stop_async()


@pytest.mark.parametrize("path", ["/missing", "/post"], ids=["404", "get-of-post-only"])
def test_a_non_2xx_answer_is_not_ready(server: tuple[Child, str], path: str) -> None:
    child, base = server
    wait_http_ok(f"{base}/ok", child)
    with pytest.raises(StartError, match="did not get a 2xx"):
        wait_http_ok(f"{base}{path}", child, timeout_s=0.3)
    child.stop()


async def test_a_non_2xx_answer_is_not_ready_async(server: tuple[Child, str]) -> None:
    child, base = server
    await wait_http_ok_async(f"{base}/ok", child)
    with pytest.raises(StartError, match="did not get a 2xx"):
        await wait_http_ok_async(f"{base}/missing", child, timeout_s=0.3)
    await child.stop_async()


CRASH = "import sys; print('no config here', file=sys.stderr); sys.exit(3)"


def test_a_child_that_exits_fails_the_wait_with_its_log(tmp_path: Path) -> None:
    child = spawn("crasher", [sys.executable, "-c", CRASH], tmp_path / "c.log")
    with pytest.raises(StartError) as raised:
        wait_http_ok(f"http://127.0.0.1:{free_port()}/", child)
    assert raised.value.name == "crasher"
    assert "exited with 3" in raised.value.reason
    assert raised.value.log_tail == "no config here"
    assert str(raised.value).endswith("no config here")


async def test_a_child_that_exits_fails_the_async_wait_with_its_log(tmp_path: Path) -> None:
    child = spawn("crasher", [sys.executable, "-c", CRASH], tmp_path / "c.log")
    with pytest.raises(StartError, match="exited with 3") as raised:
        await wait_http_ok_async(f"http://127.0.0.1:{free_port()}/", child)
    assert raised.value.log_tail == "no config here"


def test_wait_log_line_gives_the_match(tmp_path: Path) -> None:
    code = "import time; print('warming up'); print('ports 1,2', flush=True); time.sleep(60)"
    child = spawn("talker", [sys.executable, "-c", code], tmp_path / "t.log")
    assert wait_log_line(child, r"^ports ([\d,]+)$").group(1) == "1,2"
    child.stop()

"""`e2e.cluster.service_relay` as a real process: bytes pass both ways unchanged, a half-close
reaches the other side, an upstream that is down closes the client's connection, and a
bad argument is refused by name."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Child, free_port, spawn, wait_log_line

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def upstream() -> Iterator[int]:
    """A server that answers each connection with everything it read, reversed, once
    the client has half-closed."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                received = b""
                while chunk := conn.recv(65536):
                    received += chunk
                conn.sendall(received[::-1])

    threading.Thread(target=serve, daemon=True).start()
    yield port
    server.close()


def start(tmp_path: Path, upstream_port: int) -> tuple[Child, int]:
    port = free_port()
    argv = [sys.executable, "-m", "e2e.cluster.service_relay", f"127.0.0.1:{port}"]
    child = spawn("relay", [*argv, f"127.0.0.1:{upstream_port}"], tmp_path / "relay.log")
    wait_log_line(child, "service-relay: 127.0.0.1")
    return child, port


def test_bytes_pass_both_ways_and_a_half_close_goes_through(tmp_path: Path, upstream: int) -> None:
    child, port = start(tmp_path, upstream)
    try:
        payload = bytes(range(256)) * 1024  # 256 KiB, several reads
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer == payload[::-1]
    finally:
        child.stop()


def test_an_upstream_that_is_down_closes_the_connection(tmp_path: Path) -> None:
    child, port = start(tmp_path, free_port())
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            assert conn.recv(10) == b""
        assert child.running, "the relay outlives a failed upstream"
        assert "cannot reach 127.0.0.1:" in (tmp_path / "relay.log").read_text()
    finally:
        child.stop()


def test_a_bad_address_is_refused_by_name() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "e2e.cluster.service_relay", "nowhere", "127.0.0.1:1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "argument listen: expected HOST:PORT, got 'nowhere'" in done.stderr

"""Start-up: a port that cannot be bound stops the scaler cleanly, naming the flag."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from harness import free_port
from scaler.server import StartError, build
from tests.scaler.conftest import with_config


@contextlib.contextmanager
def listening() -> Iterator[int]:
    """A port held by someone else for the duration."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def unused_port() -> int:
    return free_port()


def is_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_http_port_in_use_leaves_the_grpc_port_closed() -> None:
    grpc_port = unused_port()
    with listening() as http_port:
        scaler = build(with_config(grpc_port=grpc_port, http_port=http_port))
        with pytest.raises(StartError) as caught:
            await scaler.start()
    assert "--http-port" in str(caught.value) and str(http_port) in str(caught.value)
    assert not is_open(grpc_port)


async def test_grpc_port_in_use_closes_the_http_port_again() -> None:
    http_port = unused_port()
    with listening() as grpc_port:
        scaler = build(with_config(grpc_port=grpc_port, http_port=http_port))
        with pytest.raises(StartError) as caught:
            await scaler.start()
        assert not is_open(http_port)
    assert "--grpc-port" in str(caught.value) and str(grpc_port) in str(caught.value)


async def test_a_started_scaler_stops_and_frees_both_ports() -> None:
    scaler = build(with_config())
    await scaler.start()
    ports = (scaler.grpc_port, scaler.http_port)
    assert all(is_open(port) for port in ports)
    await scaler.stop()
    assert not any(is_open(port) for port in ports)


def test_the_process_exits_1_naming_the_busy_port() -> None:
    with listening() as http_port:
        result = subprocess.run(
            [sys.executable, "-m", "scaler", "--host", "127.0.0.1", "--grpc-port", "0",
             "--http-port", str(http_port)],
            capture_output=True, text=True, timeout=30, env={**os.environ},
        )  # fmt: skip
    assert result.returncode == 1
    assert f"--http-port: cannot listen on 127.0.0.1:{http_port}" in result.stderr

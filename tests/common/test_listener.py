"""The listening socket both services bind: listening at once, an error naming the flag."""

from __future__ import annotations

import errno
import socket

import pytest

from common.listener import BACKLOG, ListenError, listen


def test_the_socket_listens_before_any_server_takes_it() -> None:
    with listen("127.0.0.1", 0, "--port") as sock:
        port = sock.getsockname()[1]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # completed by the kernel, waiting in the backlog


def test_ipv6_hosts_get_an_ipv6_socket() -> None:
    try:
        sock = listen("::1", 0, "--port")
    except ListenError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with sock:
        assert sock.family == socket.AF_INET6


def test_a_port_in_use_names_the_flag_and_the_address() -> None:
    with listen("127.0.0.1", 0, "--port", backlog=BACKLOG) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            listen("127.0.0.1", port, "--admin-port")
    assert str(caught.value) == (
        f"--admin-port: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert caught.value.errno == errno.EADDRINUSE
    assert isinstance(caught.value, OSError)


def test_an_address_not_on_this_host_names_the_flag() -> None:
    with pytest.raises(ListenError, match=r"^--http-port: cannot listen on 192\.0\.2\.1:0: "):
        listen("192.0.2.1", 0, "--http-port")  # TEST-NET-1: never a local address

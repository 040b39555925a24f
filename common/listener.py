"""A listening TCP socket for a port given by a flag, bound before the server takes it.

Both services bind their own sockets, so that a port in use stops start-up with one
message that names the flag (`--http-port: cannot listen on 0.0.0.0:9102: Address
already in use`) before anything else has started, and so that a port 0 in tests is
known at once.
"""

from __future__ import annotations

import socket

BACKLOG = 128
"""Connections the kernel completes before they are accepted; the servers that take the
socket may raise it (asyncio's `create_server` listens again with its own backlog)."""


class ListenError(OSError):
    """The port cannot be listened on; `str()` is the message naming the flag."""

    def __str__(self) -> str:
        return str(self.strerror)


def listen(host: str, port: int, flag: str, backlog: int = BACKLOG) -> socket.socket:
    """A socket bound to `host:port` and listening; `ListenError` names `flag` and why."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        message = f"{flag}: cannot listen on {host}:{port}: {exc.strerror}"
        raise ListenError(exc.errno, message) from None
    return sock

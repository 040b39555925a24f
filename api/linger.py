"""A lingering close, for a connection answered before its request was all read.

Closing a TCP socket with received bytes still unread makes the kernel send RST instead
of FIN, and RST discards whatever the client had not read yet: an early answer (a 413
for a body over the limit, a 431, a 408) then shows as "connection reset by peer". So
such a connection lingers, as web servers do: the answer goes out followed by FIN (a
half-close, `write_eof`), and what the client still sends is read and dropped until its
own FIN, `max_bytes` or `timeout_s`, whichever comes first; then the connection closes.
The bounds keep an endless or slow sender from holding the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class GuardedTransport:
    """The connection's transport as the HTTP protocol sees it, with `close()` its own.

    `close` is the protocol's to decide: at once, or `linger`; once lingering, the
    transport reads as closing, so the protocol writes nothing more and arms no timer.
    Every other attribute is the real transport's.
    """

    __slots__ = ("_transport", "close", "get_extra_info", "is_closing", "write")

    def __init__(self, transport: asyncio.Transport, close: Callable[[], None]) -> None:
        self._transport = transport
        self.close = close
        self.write = transport.write
        self.is_closing = transport.is_closing
        self.get_extra_info = transport.get_extra_info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def mark_closing(self) -> None:
        self.is_closing = _true
        self.close = _nothing


def linger(
    transport: asyncio.Transport,
    owner: asyncio.Protocol,
    *,
    max_bytes: int,
    timeout_s: float,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Half-close `transport`, drop what arrives until EOF or a bound, then close.

    `owner`, the protocol the connection had, still gets `connection_lost` at the end.
    """
    if not transport.can_write_eof():
        transport.close()
        return
    transport.set_protocol(_Discard(transport, owner, max_bytes, timeout_s, loop))
    transport.write_eof()  # after what is buffered: the answer, then FIN
    transport.resume_reading()  # it may be paused while a body waited for the app


class _Discard(asyncio.Protocol):
    def __init__(
        self,
        transport: asyncio.Transport,
        owner: asyncio.Protocol,
        max_bytes: int,
        timeout_s: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._transport = transport
        self._owner = owner
        self._bytes_left = max_bytes
        # abort, not close: a client that reads nothing would hold a close's final flush.
        self._timer = loop.call_later(timeout_s, transport.abort)

    def data_received(self, data: bytes) -> None:
        self._bytes_left -= len(data)
        if self._bytes_left < 0:
            self._transport.close()

    def eof_received(self) -> bool:
        return False  # the client is done: the transport closes

    def pause_writing(self) -> None:
        self._owner.pause_writing()

    def resume_writing(self) -> None:
        self._owner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()
        self._owner.connection_lost(exc)


def _true() -> bool:
    return True


def _nothing() -> None:
    pass

"""uvicorn's httptools connection, with bounds on the request head.

uvicorn bounds neither the size of a request line plus headers nor the time they take to
arrive when it parses with httptools, and it answers its own 503 (over
`limit_concurrency`) in plain text. This subclass adds, per connection:

- a head size limit: the bytes received while a head is incomplete are counted, so one
  endless header line is caught while httptools still buffers it, and complete headers
  are counted exactly; over the limit the answer is 431 and the connection closes.
  A head that arrives within one read together with the request before it is caught
  by the exact count only, so it can pass the limit by at most one read;
- a head deadline: a head must be complete within `request_timeout_s` of the connection
  opening or the previous response ending (slowloris); a started head then gets 408, an
  idle connection is closed silently, as the keep-alive timeout does;
- a body deadline: the body must be complete within `request_timeout_s` of its head;
  if the app has not answered yet it gets 408, and the connection closes. One timer per
  connection serves both deadlines and is re-armed lazily, so a request costs a clock
  read rather than a timer (a per-request `asyncio.timeout` cost about a tenth of the
  whole request);
- a problem+json 503 in place of uvicorn's plain one, and a problem+json 400 in place of
  its plain one for a request that is not HTTP/1.1;
- every answer it gives itself (400, 408, 431, 503) counted by `observe`, as the app's
  middleware counts the app's: each costs the client a request, so `requests_total`
  shows it;
- a drain: once `drain.draining` is set, every answer carries `Connection: close`, and
  at the server's shutdown a connection on which a request is arriving is answered
  before it closes (uvicorn would close it with the request unanswered), as is one
  accepted without a byte yet whose request comes within `first_byte_grace_s`; only
  idle keep-alive connections close at once;
- a lingering close (api/linger.py) whenever it closes with the request not all read, so
  that an early answer (413, 431, 408, 503) reaches the client instead of a reset.

It overrides parser callbacks of `HttpToolsProtocol` and its `_start_asgi_task`, and
hands it a transport whose `close()` is its own. tests/api/test_limits.py drives each
limit through a real server; tests/api/test_protocol.py checks that uvicorn still has
each overridden method with the same parameters and still calls it, so that an upgrade
past the pinned minor series fails loudly instead of dropping a limit. Why no public
option of uvicorn does this, and what it costs: docs/UVICORN.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol, cast

from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from api.linger import GuardedTransport, linger
from api.problems import (
    HEADERS_TOO_LARGE,
    MALFORMED_REQUEST,
    OVERLOADED,
    PROBLEM_MEDIA_TYPE,
    REQUEST_TIMEOUT,
    ProblemType,
    problem_body,
    send_problem,
)

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_head_bytes: int
    head_timeout_s: float
    keep_alive_timeout_s: float
    linger_max_bytes: int = 4 * MIB
    """Most bytes read and dropped after an early answer before the connection closes."""
    linger_timeout_s: float = 2.0
    """Longest wait for the client's FIN after an early answer."""
    first_byte_grace_s: float = 1.0
    """How long, once the server stops, a connection accepted without a byte yet gets
    for its request head; then it closes (with a 408 if the head has begun)."""


Observe = Callable[[int, float], None]
"""Counts one answer: its status and seconds since its request began to arrive."""


class Drain(Protocol):
    """What the connections read to know the process is shutting down."""

    draining: bool


class _NeverDraining:
    draining = False


def _count_nothing(status: int, duration_s: float) -> None:
    pass


class _HeadTooLarge(Exception):
    """Raised from a parser callback; httptools turns it into an `HttpParserError`."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    limits = ConnectionLimits(16 * 1024, 10.0, 5.0)
    observe: Observe = staticmethod(_count_nothing)
    drain: Drain = _NeverDraining()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.keep_alive_timeout_s  # type: ignore[assignment]
        self._head_open = True
        self._head_bytes_received = 0
        self._head_bytes_parsed = 0
        self._head_too_large = False
        self._head_started_at = 0.0
        self._waiting_for: str | None = None  # "head", "body" or None: what the deadline is for
        self._deadline_at = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._connection = transport
        self._guard = GuardedTransport(transport, self._close)
        self.transport = cast(asyncio.Transport, self._guard)
        self._await("head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting_for = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_open:
            if not self._head_bytes_received:
                self._head_started_at = self.loop.time()
            self._head_bytes_received += len(data)
        super().data_received(data)
        if (
            self._head_open
            and self._head_bytes_received > self.limits.max_head_bytes
            and not self.transport.is_closing()
        ):
            self._send_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes_parsed = 0

    def on_url(self, url: bytes) -> None:
        self._count_parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_parsed(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._head_bytes_received = 0
        self._await("body")
        super().on_headers_complete()
        if self.drain.draining:
            self.cycle.keep_alive = False  # uvicorn then answers with Connection: close

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_open = True
        self._waiting_for = None
        if self.cycle.response_complete:  # answered early (413, 429...): no response ends later
            self._await("head")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._waiting_for is None and not self.transport.is_closing():
            self._await("head")

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:  # uvicorn's answer to the `_HeadTooLarge` of a callback
            self._send_too_large()
        else:  # httptools refused the bytes: uvicorn's answer would be text/plain
            self._send_problem(MALFORMED_REQUEST, "the request is not valid HTTP/1.1")

    def shutdown(self) -> None:
        """The server's stop: idle connections close, one with a request arriving answers it.

        A connection accepted without a byte yet counts as arriving for a moment: its
        client has just connected to send a request.
        """
        if self._head_open and not self.transport.is_closing():
            if self._head_bytes_received:
                return  # its head completes while draining: answered with Connection: close
            if self.cycle is None:
                self._expect_head_within(self.limits.first_byte_grace_s)
                return
        super().shutdown()

    def begin_drain(self) -> None:
        """Answers not started yet go out with Connection: close, pipelined ones too."""
        cycles = [self.cycle, *(cycle for cycle, _ in self.pipeline)]
        for cycle in cycles:
            if cycle is not None and not cycle.response_started:
                cycle.keep_alive = False

    def _send_too_large(self) -> None:
        limit = self.limits.max_head_bytes
        self._send_problem(HEADERS_TOO_LARGE, f"the request head is over {limit} bytes")

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        if app is service_unavailable:
            app = self._overloaded
        super()._start_asgi_task(cycle, app)

    async def _overloaded(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"retry-after", b"1"), (b"connection", b"close")]
        await send_problem(send, OVERLOADED, "too many open connections; retry shortly", headers)
        self.observe(OVERLOADED.status, self.loop.time() - self._head_started_at)

    def _close(self) -> None:
        """Every close of uvicorn's and ours: at once, or lingering if bytes may be unread."""
        connection = self._connection
        if (self._head_open and self._head_bytes_received == 0) or connection.is_closing():
            connection.close()
            return
        self._guard.mark_closing()
        limits = self.limits
        linger(
            connection,
            self,
            max_bytes=limits.linger_max_bytes,
            timeout_s=limits.linger_timeout_s,
            loop=self.loop,
        )

    def _count_parsed(self, size: int) -> None:
        self._head_bytes_parsed += size
        if self._head_bytes_parsed > self.limits.max_head_bytes:
            self._head_too_large = True
            raise _HeadTooLarge

    def _await(self, what: str) -> None:
        self._waiting_for = what
        self._deadline_at = self.loop.time() + self.limits.head_timeout_s
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline_at, self._on_deadline)

    def _expect_head_within(self, seconds: float) -> None:
        """Bring the head deadline forward; a connection without a byte by then closes."""
        deadline_at = self.loop.time() + seconds
        if deadline_at < self._deadline_at:
            self._deadline_at = deadline_at
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(deadline_at, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        if self._waiting_for is None or self.transport.is_closing():
            return
        if self.loop.time() < self._deadline_at:  # a later phase moved the deadline: wait on
            self._timer = self.loop.call_at(self._deadline_at, self._on_deadline)
            return
        timeout_s = self.limits.head_timeout_s
        if self._waiting_for == "body":
            if self.cycle.response_started:
                self.transport.close()  # answered already; the rest of the body is not wanted
            else:  # the app is waiting for the body: its receive() sees the disconnect
                self._send_problem(REQUEST_TIMEOUT, f"the body did not arrive within {timeout_s} s")
        elif self._head_bytes_received == 0:
            self.transport.close()
        else:
            self._send_problem(
                REQUEST_TIMEOUT, f"the request head did not arrive within {timeout_s} s"
            )

    def _send_problem(self, problem: ProblemType, detail: str) -> None:
        """Answer outside any ASGI cycle, then close: the head was never complete."""
        body = problem_body(problem, detail)
        self.transport.write(
            b"HTTP/1.1 %d %s\r\n" % (problem.status, _reason(problem.status))
            + b"content-type: %s\r\n" % PROBLEM_MEDIA_TYPE.encode()
            + b"content-length: %d\r\n" % len(body)
            + b"connection: close\r\n\r\n"
            + body
        )
        self.transport.close()
        self.observe(problem.status, self.loop.time() - self._head_started_at)


def bounded_protocol(
    limits: ConnectionLimits,
    observe: Observe | None = None,
    drain: Drain | None = None,
) -> type[BoundedHttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)`, which takes a class.

    `observe` counts the answers the protocol gives itself; `drain` says when to close.
    """
    attributes = {
        "limits": limits,
        "observe": staticmethod(observe or _count_nothing),
        "drain": drain if drain is not None else _NeverDraining(),
    }
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), attributes)


def _reason(status: int) -> bytes:
    return HTTPStatus(status).phrase.encode()

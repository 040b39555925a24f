"""api/protocol.py overrides methods of uvicorn's `HttpToolsProtocol`, private ones too.

An uvicorn release that renames one, changes its parameters or stops calling it would
drop a limit without a word; these tests fail loudly instead. The limits themselves are
tested from outside in tests/api/test_limits.py.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import uvicorn
from uvicorn.protocols.http import flow_control
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from api.app import Service, public_app
from api.config import ApiConfig
from api.protocol import BoundedHttpToolsProtocol, ConnectionLimits, bounded_protocol

# What uvicorn 0.54 takes, by parameter name (`self` left out), all positional-or-keyword.
OVERRIDDEN: dict[str, list[str]] = {
    "__init__": ["config", "server_state", "app_state", "_loop"],
    "connection_made": ["transport"],
    "connection_lost": ["exc"],
    "data_received": ["data"],
    "on_message_begin": [],
    "on_url": ["url"],
    "on_header": ["name", "value"],
    "on_headers_complete": [],
    "on_message_complete": [],
    "on_response_complete": [],
    "send_400_response": ["msg"],
    "shutdown": [],
    "_start_asgi_task": ["cycle", "app"],
}
"""Every method of `HttpToolsProtocol` that `BoundedHttpToolsProtocol` defines again."""


def test_every_override_is_listed_here() -> None:
    ours = {
        name
        for name, value in vars(BoundedHttpToolsProtocol).items()
        if callable(value) and hasattr(HttpToolsProtocol, name)
    }
    assert ours == set(OVERRIDDEN)


@pytest.mark.parametrize("name", sorted(OVERRIDDEN))
def test_uvicorn_still_has_each_overridden_method_with_its_parameters(name: str) -> None:
    method = vars(HttpToolsProtocol).get(name)
    assert callable(method), f"uvicorn's HttpToolsProtocol.{name} is gone"
    parameters = list(inspect.signature(method).parameters.values())[1:]
    assert [p.name for p in parameters] == OVERRIDDEN[name], (
        f"uvicorn's HttpToolsProtocol.{name} changed its parameters"
    )
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters)


def test_uvicorn_still_has_what_the_protocol_reads() -> None:
    assert callable(flow_control.service_unavailable)  # replaced by a problem+json 503
    cycle_init = inspect.signature(RequestResponseCycle.__init__).parameters
    assert {"transport", "keep_alive", "on_response"} <= set(cycle_init)
    source = inspect.getsource(RequestResponseCycle.__init__)
    for attribute in ("self.response_started", "self.response_complete"):
        assert attribute in source, f"RequestResponseCycle no longer sets {attribute}"


@dataclass
class Recorded:
    port: int
    called: set[str]
    server: uvicorn.Server


def recording_protocol(called: set[str]) -> type[BoundedHttpToolsProtocol]:
    """The real protocol, noting each overridden method as something calls it."""

    def noting(name: str) -> Callable[..., Any]:
        def method(self: BoundedHttpToolsProtocol, *args: Any, **kwargs: Any) -> Any:
            called.add(name)
            return getattr(super(recording, self), name)(*args, **kwargs)

        return method

    limits = ConnectionLimits(max_head_bytes=1024, head_timeout_s=10, keep_alive_timeout_s=5)
    base = bounded_protocol(limits)
    recording = type("Recording", (base,), {name: noting(name) for name in OVERRIDDEN})
    return recording


@pytest.fixture
async def recorded() -> AsyncIterator[Recorded]:
    """A real uvicorn on 127.0.0.1 with the public app, as api/server.py configures it."""
    called: set[str] = set()
    config = ApiConfig(host="127.0.0.1", port=0, admin_port=0, max_header_bytes=1024)
    server = uvicorn.Server(
        uvicorn.Config(
            public_app(Service.create(config)),
            http=recording_protocol(called),
            limit_concurrency=2,
            ws="none",
            loop="none",
            lifespan="off",
            access_log=False,
            log_config=None,
        )
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections wait in the backlog until uvicorn has started
    serving = asyncio.create_task(server.serve([sock]))
    yield Recorded(sock.getsockname()[1], called, server)
    server.should_exit = True
    await serving


async def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` on a new connection, read one response to the end of the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").strip().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    body = await reader.readexactly(int(headers["content-length"]))
    writer.close()
    return int(status_line.split()[1]), headers, body


def rate(extra_headers: bytes = b"") -> bytes:
    body = b'{"items":[{"id":"r1","up":3,"down":1}]}'
    return (
        b"POST /v1/rate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n%s\r\n" % (len(body), extra_headers)
    ) + body


async def test_uvicorn_calls_every_overridden_method(recorded: Recorded) -> None:
    status, _, _ = await exchange(recorded.port, rate())
    assert status == 200

    many_headers = b"X-Many: 1\r\n" * 200  # over the 1024 bytes, counted while parsing
    status, headers, body = await exchange(recorded.port, rate(many_headers))
    assert (status, headers["content-type"]) == (431, "application/problem+json")

    idle = await asyncio.open_connection("127.0.0.1", recorded.port)  # limit_concurrency=2
    for _ in range(50):  # until the server has accepted the idle connection
        status, headers, body = await exchange(recorded.port, rate())
        if status != 200:
            break
    idle[1].close()
    assert (status, headers["content-type"]) == (503, "application/problem+json")
    assert orjson.loads(body)["status"] == 503

    for _ in range(100):  # connection_lost comes as the server's loop gets to the closes
        if "connection_lost" in recorded.called:
            break
        await asyncio.sleep(0.01)

    idle = await asyncio.open_connection("127.0.0.1", recorded.port)
    await asyncio.sleep(0.1)  # accepted
    recorded.server.should_exit = True  # its shutdown() goes to every open connection
    assert await idle[0].read() == b""  # an idle one is closed
    assert recorded.called == set(OVERRIDDEN), f"never called: {set(OVERRIDDEN) - recorded.called}"

"""Run the public and the admin server on one event loop, and shut them down gracefully.

On SIGTERM or SIGINT: `/readyz` answers 503 at once and every answer from then on says
`Connection: close`, so keep-alive clients move to other pods one request at a time
while the pod still serves; after `--shutdown-delay` both servers stop accepting, idle
connections close, a request still arriving or in flight is answered (at most
`--drain-timeout`), and the process exits 0. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
from collections.abc import Callable, Iterator

import uvicorn
import uvloop
from starlette.types import ASGIApp

from api.app import Service, admin_app, public_app
from api.config import ApiConfig, describe
from api.protocol import (
    BoundedHttpToolsProtocol,
    ConnectionLimits,
    Drain,
    Observe,
    bounded_protocol,
)
from common.listener import ListenError, listen

logger = logging.getLogger("api")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EXIT_OK = 0
EXIT_CANNOT_LISTEN = 1


class GracefulServer(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve`: two of them share one process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop listening without resetting the connections the kernel has queued.

        Closing a listening socket resets every connection completed but not accepted
        yet, though its client may have sent a request already; these are accepted first
        and served like the others, within the same step as the close.
        """
        listeners = sockets or []
        queued = [connection for listener in listeners for connection in _accept_queued(listener)]
        for server in self.servers:
            server.close()
        for listener in listeners:
            listener.close()
        loop = asyncio.get_running_loop()
        for connection in queued:
            await loop.connect_accepted_socket(self._create_protocol, connection)
        await super().shutdown(sockets)

    def _create_protocol(self) -> asyncio.Protocol:
        """What uvicorn's own `create_protocol` makes for each connection it accepts."""
        protocol_class = self.config.http_protocol_class
        return protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )


def run(*, config: ApiConfig) -> int:
    """Serve until a signal asks to stop; returns the process exit code."""
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT, force=True)
    logger.info("rating-api starting: %s", describe(config))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(config))


async def serve(config: ApiConfig) -> int:
    """Both servers on the running loop, until SIGTERM or SIGINT."""
    try:
        public_socket = listen(config.host, config.port, "--port")
        admin_socket = listen(config.host, config.admin_port, "--admin-port")
    except ListenError as exc:
        logger.error("cannot start: %s", exc)
        return EXIT_CANNOT_LISTEN
    service = Service.create(config)
    servers = [
        _server(public_app(service), service, service.metrics.observe),
        _server(admin_app(service), service),
    ]
    handle_signals(service, servers, config.shutdown_delay_s, logger)
    logger.info(
        "rating-api ready: public http://%s/ admin http://%s/ pod=%s boot_id=%s",
        address(public_socket),
        address(admin_socket),
        config.pod_name,
        service.boot_id,
    )
    await asyncio.gather(servers[0].serve([public_socket]), servers[1].serve([admin_socket]))
    logger.info("rating-api stopped")
    return EXIT_OK


def _server(app: ASGIApp, service: Service, observe: Observe | None = None) -> GracefulServer:
    """`observe` counts the protocol's own answers (400, 408, 431, 503): public port only."""
    config = service.config
    limits = ConnectionLimits(
        max_head_bytes=config.max_header_bytes,
        head_timeout_s=config.request_timeout_s,
        keep_alive_timeout_s=config.keep_alive_timeout_s,
    )
    return graceful_server(
        app,
        limits,
        observe=observe,
        drain=service,
        max_connections=config.max_connections,
        drain_timeout_s=config.drain_timeout_s,
    )


def graceful_server(
    app: ASGIApp,
    limits: ConnectionLimits,
    *,
    observe: Observe | None,
    drain: Drain,
    max_connections: int,
    drain_timeout_s: float,
    own_headers: bool = True,
) -> GracefulServer:
    """A uvicorn server with the connection limits of `api.protocol`, for any of the
    project's HTTP ports; `own_headers=False` leaves out uvicorn's Server and Date (a
    proxy passes an upstream's own)."""
    return GracefulServer(
        uvicorn.Config(
            app,
            http=bounded_protocol(limits, observe, drain),
            limit_concurrency=max_connections,
            ws="none",  # no WebSocket here; an upgrade would take over the guarded transport
            loop="none",
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=math.ceil(drain_timeout_s),
            server_header=own_headers,
            date_header=own_headers,
        )
    )


def _accept_queued(listener: socket.socket) -> list[socket.socket]:
    """The connections waiting in `listener`'s accept queue, without blocking."""
    listener.setblocking(False)
    queued: list[socket.socket] = []
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:  # BlockingIOError: none left; any other: accept no more
            return queued
        connection.setblocking(False)
        queued.append(connection)


def handle_signals(
    drain: Drain,
    servers: list[GracefulServer],
    shutdown_delay_s: float,
    log: logging.Logger,
    detail: Callable[[], str] = lambda: "",
) -> None:
    """SIGTERM or SIGINT: `drain.draining` (so /readyz says 503 and every answer says
    `Connection: close`), then stop accepting after `shutdown_delay_s`; a second one
    stops at once. `detail` adds to the log line what is left to finish."""
    loop = asyncio.get_running_loop()

    def stop_accepting() -> None:
        for server in servers:
            server.should_exit = True

    def on_signal(signum: int) -> None:
        if drain.draining:
            log.warning("%s again: stopping now", signal.Signals(signum).name)
            for server in servers:
                server.should_exit = server.force_exit = True
            return
        drain.draining = True
        for server in servers:
            for connection in server.server_state.connections:
                if isinstance(connection, BoundedHttpToolsProtocol):
                    connection.begin_drain()
        log.info(
            "%s: /readyz now answers 503; stopping in %.1f s, then finishing in-flight requests%s",
            signal.Signals(signum).name,
            shutdown_delay_s,
            detail(),
        )
        loop.call_later(shutdown_delay_s, stop_accepting)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


def address(sock: socket.socket) -> str:
    """`host:port` a socket listens on, an IPv6 host in brackets, for the logs."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

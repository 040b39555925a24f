"""Wiring: the public and admin ports, the pod source, and a clean SIGTERM.

Both ports are uvicorn servers with rating-api's own connection limits
(`api.protocol`: head size and deadline, body deadline, problem+json 503 past
`--max-connections`, a lingering close). On SIGTERM or SIGINT `/readyz` answers 503
and answers say `Connection: close`; after `--shutdown-delay` both ports stop
accepting, and held and in-flight requests get `--drain-timeout` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

import uvloop
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from activator.app import Activator, PublicApp, admin_app
from activator.config import ActivatorConfig, describe
from activator.forward import Forwarder
from activator.hold import Holds
from activator.metrics import ActivatorMetrics
from activator.pods import EndpointsFile, EndpointSlicePods, PodSource
from activator.publish import Desired, Lease, SliceWriter
from api.protocol import ConnectionLimits
from api.server import GracefulServer, address, graceful_server, handle_signals
from common.listener import listen
from scaler.discovery.endpointslices import KubeApi

log = logging.getLogger("activator")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EXIT_OK = 0
EXIT_CANNOT_START = 1


def build(config: ActivatorConfig) -> Activator:
    """The activator's parts, wired; nothing is bound or started yet."""
    holds = Holds(max_held=config.max_held)
    return Activator(
        config=config,
        holds=holds,
        forwarder=Forwarder(config.forward_timeout_s),
        metrics=ActivatorMetrics(CollectorRegistry(), holds),
        boot_id=uuid.uuid4().hex,
    )


def pod_source(config: ActivatorConfig) -> PodSource:
    if config.endpoints_file:
        return EndpointsFile(Path(config.endpoints_file))
    namespace, service = config.endpoint_slices.split("/")
    kubeconfig = Path(config.kubeconfig) if config.kubeconfig else None
    return EndpointSlicePods(namespace, service, config.pod_port, kubeconfig)


def run(*, config: ActivatorConfig) -> int:
    """Serve until a signal asks to stop; returns the process exit code."""
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT, force=True)
    log.info("rating-activator starting: %s", describe(config))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(config))


async def serve(config: ActivatorConfig) -> int:
    """Both ports and the pod source on the running loop, until SIGTERM or SIGINT."""
    try:
        public_socket = listen(config.host, config.port, "--port")
        admin_socket = listen(config.host, config.admin_port, "--admin-port")
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return EXIT_CANNOT_START
    activator = build(config)
    servers = [_server(PublicApp(activator), activator), _server(admin_app(activator), activator)]
    handle_signals(
        activator,
        servers,
        config.shutdown_delay_s,
        log,
        lambda: f" ({activator.holds.held} held)",
    )
    desired = Desired()

    def ready_pods(pods: Sequence[str]) -> None:
        activator.holds.set_pods(pods)
        desired.set_rating_pods(pods)

    tasks = [asyncio.create_task(pod_source(config).run(ready_pods), name="pods")]
    writer = _writer(config, desired)
    if writer is not None:
        activators = EndpointSlicePods(
            config.endpoint_slices.split("/")[0],
            config.activator_service,
            config.port,
            Path(config.kubeconfig) if config.kubeconfig else None,
        )
        tasks.append(asyncio.create_task(activators.run(desired.set_activators), name="peers"))
        tasks.append(asyncio.create_task(writer.run(), name="public slice"))
    log.info(
        "rating-activator ready: public %s admin %s, pods from %s, hold %gs, at most %d held",
        address(public_socket),
        address(admin_socket),
        config.endpoints_file or f"EndpointSlices of {config.endpoint_slices}",
        config.hold_timeout_s,
        config.max_held,
    )
    try:
        await asyncio.gather(servers[0].serve([public_socket]), servers[1].serve([admin_socket]))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if writer is not None:
            await writer.close()
        await activator.forwarder.close()
    log.info("rating-activator stopped")
    return EXIT_OK


def _writer(config: ActivatorConfig, desired: Desired) -> SliceWriter | None:
    """The public EndpointSlice's writer (one per activator; the Lease picks who writes)."""
    if not config.public_service:
        return None
    namespace = config.endpoint_slices.split("/")[0]
    api = KubeApi(Path(config.kubeconfig) if config.kubeconfig else None)
    lease = Lease(api, namespace, config.lease, config.pod_name)
    return SliceWriter(api, namespace, config.public_service, config.pod_port, desired, lease)


def _server(app: ASGIApp, activator: Activator) -> GracefulServer:
    config = activator.config
    limits = ConnectionLimits(
        max_head_bytes=config.max_header_bytes,
        head_timeout_s=config.request_timeout_s,
        keep_alive_timeout_s=config.keep_alive_timeout_s,
    )
    return graceful_server(
        app,
        limits,
        observe=None,
        drain=activator,
        max_connections=config.max_connections,
        drain_timeout_s=config.drain_timeout_s,
        own_headers=False,  # a pod's answer keeps its own Server and Date
    )

"""Wiring: the gRPC server, the HTTP port, the pollers, and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from dataclasses import dataclass

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.config import ScalerConfig
from scaler.discovery import discovery_for, make_resolver
from scaler.http import make_app
from scaler.keys import TargetKey
from scaler.metrics import ScalerMetrics, TargetsCollector
from scaler.pod_client import PodClient, TokenFile
from scaler.poller import TargetPoller
from scaler.servicer import ExternalScalerServicer
from scaler.targets import Targets

log = logging.getLogger("scaler")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ExternalScaler"].full_name
HEALTH_SERVICES = ("", SERVICE_NAME, "liveness", "readiness")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Scaler:
    """A running scaler; `ports` holds the bound ports (useful with port 0)."""

    config: ScalerConfig
    grpc_server: grpc.aio.Server
    http_runner: web.AppRunner
    servicer: ExternalScalerServicer
    health: health_aio.HealthServicer
    targets: Targets
    client: PodClient
    grpc_port: int
    http_port: int

    def ready(self) -> bool:
        return not self.servicer.closing and self.targets.has_fresh_data()

    async def watch_readiness(self) -> None:
        """Mirror readiness into the gRPC health `readiness` service every poll interval."""
        current: bool | None = None
        while not self.servicer.closing:
            ready = self.ready()
            if ready != current:
                await self.health.set("readiness", SERVING if ready else NOT_SERVING)
                log.info("readiness: %s", "SERVING" if ready else "NOT_SERVING (no fresh data)")
                current = ready
            await asyncio.sleep(self.config.poll_interval_s)

    async def stop(self) -> None:
        """Health NOT_SERVING, refuse new calls, let in-flight ones finish, close streams."""
        if self.servicer.closing:
            return
        log.info("shutting down: grace %.1fs", self.config.shutdown_grace_s)
        self.servicer.close()
        await self.health.enter_graceful_shutdown()
        await self.grpc_server.stop(self.config.shutdown_grace_s)
        await self.http_runner.cleanup()
        await self.targets.close()
        await self.client.close()
        log.info("stopped")


async def start(config: ScalerConfig) -> Scaler:
    registry = CollectorRegistry()
    metrics = ScalerMetrics(registry)
    token = TokenFile(config.pod_token_file) if config.pod_token_file else lambda: None
    client = PodClient(config.pod_timeout_s, token=token)
    resolver = make_resolver(config.dns_server, timeout_s=max(config.pod_timeout_s, 1.0))

    def make_poller(target: TargetKey) -> TargetPoller:
        return TargetPoller(
            target,
            discovery_for(target, resolver),
            client.fetch,
            poll_interval_s=config.poll_interval_s,
            on_cycle=metrics.on_cycle,
        )

    targets = Targets(
        make_poller,
        first_poll_timeout_s=config.pod_timeout_s + 0.1,
        idle_s=config.forget_after_s,
        on_forget=metrics.forget,
    )
    registry.register(TargetsCollector(targets))
    servicer = ExternalScalerServicer(targets, config.allowed_hosts, metrics)
    health_servicer = health_aio.HealthServicer()
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_ExternalScalerServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_name, reflection.SERVICE_NAME), server
    )
    grpc_port = _bind_grpc(server, config)
    for service in HEALTH_SERVICES:
        await health_servicer.set(service, SERVING)
    await server.start()

    def ready() -> bool:
        return not servicer.closing and targets.has_fresh_data()

    runner = web.AppRunner(make_app(registry, targets, ready), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.http_port)
    await site.start()
    http_port = runner.addresses[0][1] if runner.addresses else config.http_port
    return Scaler(
        config, server, runner, servicer, health_servicer, targets, client, grpc_port, http_port
    )


def _bind_grpc(server: grpc.aio.Server, config: ScalerConfig) -> int:
    address = f"{config.host}:{config.grpc_port}"
    if not config.tls:
        return server.add_insecure_port(address)
    assert config.tls_cert is not None and config.tls_key is not None
    client_ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
    credentials = grpc.ssl_server_credentials(
        [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
    return server.add_secure_port(address, credentials)


def tune_gc() -> None:
    """Freeze what start-up built and collect the young generation less often.

    Each poll cycle allocates thousands of short-lived objects per thousand pods; with
    the default thresholds the cyclic collector took about a third of the poller's CPU.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


async def serve(config: ScalerConfig) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    scaler = await start(config)
    tune_gc()
    mode = "mTLS" if config.tls_client_ca else "TLS" if config.tls else "plaintext"
    log.info(
        "rating-scaler serving gRPC on %s:%d (%s), HTTP on %s:%d; poll every %gs, pod timeout %gs, "
        "allowed hosts %s",
        config.host,
        scaler.grpc_port,
        mode,
        config.host,
        scaler.http_port,
        config.poll_interval_s,
        config.pod_timeout_s,
        ",".join(config.allowed_hosts.patterns),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    background = [
        asyncio.create_task(scaler.watch_readiness(), name="readiness"),
        asyncio.create_task(scaler.targets.forget_idle_forever(), name="forget idle targets"),
    ]
    await stop.wait()
    for task in background:
        task.cancel()
    await scaler.stop()

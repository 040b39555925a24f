"""Wiring: the gRPC server, the HTTP port, the pollers, and a clean SIGTERM.

`build()` only wires objects together; `Scaler.start()` is the one step that binds
ports and starts tasks, and it undoes what it did when a step fails. `run()` is the
programmatic entry point behind `rating-scaler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Callable

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from common.listener import ListenError, listen
from common.token_file import TokenFile
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.config import ConfigError, ScalerConfig
from scaler.discovery import Discoveries
from scaler.http import make_app
from scaler.metrics import ScalerMetrics, TargetsCollector, WorkersCollector
from scaler.pod_client import PodClient
from scaler.poller import SeriesStore, TargetPoller
from scaler.servicer import ExternalScalerServicer, TriggerCache
from scaler.target_key import TargetKey
from scaler.targets import Targets
from scaler.tls import TlsReloader
from scaler.worker import WorkerSettings
from scaler.workers import WorkerPods, WorkerPool

log = logging.getLogger("scaler")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ExternalScaler"].full_name
HEALTH_SERVICES = ("", SERVICE_NAME, "liveness", "readiness")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
EXIT_OK = 0
EXIT_CANNOT_START = 1


class StartError(RuntimeError):
    """The scaler could not start (a port in use, unreadable TLS files); names the flag."""


class Scaler:
    """The scaler's parts, wired; `start()` serves them, `stop()` ends them gracefully."""

    def __init__(self, config: ScalerConfig) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.metrics = ScalerMetrics(self.registry)
        token = TokenFile(config.pod_token_file) if config.pod_token_file else lambda: None
        self.client = PodClient(config.pod_timeout_s, token=token)
        self.in_flight = asyncio.Semaphore(config.max_in_flight)  # shared by every poller
        self.series = SeriesStore()  # every target's pod series
        self.discoveries = Discoveries(
            kubeconfig=config.kubeconfig,
            dns_server=config.dns_server,
            dns_timeout_s=max(config.pod_timeout_s, 1.0),
        )
        self.targets = Targets(
            self._make_poller,
            first_poll_timeout_s=config.pod_timeout_s + 0.1,
            max_targets=config.max_targets,
            idle_s=config.forget_after_s,
            on_forget=self._forget,
        )
        self.registry.register(TargetsCollector(self.targets))
        self.workers: WorkerPool | None = None  # --poll-workers 0: the pods are polled here
        if config.poll_workers > 0:
            settings = WorkerSettings(
                index=0,
                parent_pid=0,
                pod_timeout_s=config.pod_timeout_s,
                pod_token_file=config.pod_token_file,
                max_in_flight=config.max_in_flight,
                log_level=config.log_level,
            )
            self.workers = WorkerPool(config.poll_workers, settings)
            pool = self.workers
            self.registry.register(WorkersCollector(lambda: (pool.alive, pool.restarts)))
        self.triggers = TriggerCache(config.allowed_hosts)
        self.servicer = ExternalScalerServicer(self.targets, self.triggers, self.metrics.rpcs)
        self.health = health_aio.HealthServicer()
        self.grpc_server = _grpc_server(self.servicer, self.health)
        self.http_runner = web.AppRunner(
            make_app(self.registry, self.targets, self.ready), access_log=None
        )
        self.grpc_port = config.grpc_port
        self.http_port = config.http_port
        self._tasks: list[asyncio.Task[None]] = []

    def _forget(self, target: TargetKey) -> None:
        """A forgotten target leaves nothing behind: no series, no cached trigger or URL."""
        self.metrics.forget(target)
        self.triggers.clear()
        self.client.forget_urls()

    def ready(self) -> bool:
        """The one readiness switch: `/readyz` reads it, the gRPC `readiness` mirrors it."""
        return not self.servicer.closing and self.targets.has_fresh_data()

    def _make_poller(self, target: TargetKey) -> TargetPoller:
        activators = target.activator
        shards = None
        if self.workers is not None:
            shards = WorkerPods(self.workers, target.label, self.config.pod_timeout_s)
        return TargetPoller(
            target,
            self.discoveries.for_target(target),
            self.client.fetch,
            activators=self.discoveries.for_activator(activators) if activators else None,
            fetch_held=self.client.fetch_held,
            poll_interval_s=self.config.poll_interval_s,
            on_cycle=self.metrics.on_cycle,
            shared_in_flight=self.in_flight,
            store=self.series,
            shards=shards,
        )

    async def start(self) -> None:
        """Bind both ports and serve; on any failure, close what was opened and raise."""
        async with contextlib.AsyncExitStack() as undo:
            undo.push_async_callback(self.client.close)
            if self.workers is not None:
                await self.workers.start()
                undo.push_async_callback(self.workers.stop)
            http_socket = _listen(self.config.host, self.config.http_port, "--http-port")
            undo.callback(http_socket.close)
            self.grpc_port = _bind_grpc(self.grpc_server, self.config)
            undo.push_async_callback(self.grpc_server.stop, None)
            for service in HEALTH_SERVICES:
                await self.health.set(service, SERVING)
            await self.grpc_server.start()
            await self.http_runner.setup()
            undo.push_async_callback(self.http_runner.cleanup)
            await web.SockSite(self.http_runner, http_socket).start()
            self.http_port = http_socket.getsockname()[1]
            self._tasks = [
                asyncio.create_task(self._watch_readiness(), name="readiness"),
                asyncio.create_task(self.targets.forget_idle_forever(), name="forget targets"),
            ]
            undo.pop_all()  # started: stop() undoes it from now on

    async def _watch_readiness(self) -> None:
        """Mirror `ready()` into the gRPC health `readiness` service every poll interval."""
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
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.health.enter_graceful_shutdown()
        await self.grpc_server.stop(self.config.shutdown_grace_s)
        await self.http_runner.cleanup()
        if self.workers is not None:  # first: forgetting the targets would restart emptied ones
            await self.workers.stop()
        await self.targets.close()
        await self.client.close()
        await self.discoveries.close()
        log.info("stopped")


def build(config: ScalerConfig) -> Scaler:
    """The scaler wired from its config; nothing is bound or started yet."""
    return Scaler(config)


async def start(config: ScalerConfig) -> Scaler:
    """Build and start a scaler (tests and embedding); raises StartError."""
    scaler = build(config)
    await scaler.start()
    return scaler


def _grpc_server(
    servicer: ExternalScalerServicer, health: health_aio.HealthServicer
) -> grpc.aio.Server:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_ExternalScalerServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_name, reflection.SERVICE_NAME), server
    )
    return server


def _listen(host: str, port: int, flag: str) -> socket.socket:
    """`common.listener.listen`, its failure a StartError like every other."""
    try:
        return listen(host, port, flag)
    except ListenError as exc:
        raise StartError(str(exc)) from None


def _bind_grpc(server: grpc.aio.Server, config: ScalerConfig) -> int:
    address = f"{config.host}:{config.grpc_port}"
    credentials = _credentials(config) if config.tls else None
    try:
        if credentials is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, credentials)
    except RuntimeError:  # grpc says only "Failed to bind": ask the kernel why
        raise StartError(
            f"--grpc-port: cannot listen on {address}: {_bind_problem(config)}"
        ) from None


def _bind_problem(config: ScalerConfig) -> str:
    try:
        _listen(config.host, config.grpc_port, "--grpc-port").close()
    except StartError as exc:
        return str(exc).rpartition(": ")[2]
    return "gRPC could not bind the address"


def _credentials(config: ScalerConfig) -> grpc.ServerCredentials:
    """TLS credentials that follow the files: a renewed certificate serves without a restart."""
    try:
        return TlsReloader(config).credentials()
    except ConfigError as exc:
        raise StartError(str(exc)) from None


def tune_gc() -> None:
    """Freeze what start-up built and collect the young generation less often.

    Each poll cycle allocates thousands of short-lived objects per thousand pods; with
    the default thresholds the cyclic collector took about a third of the poller's CPU.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


def run(*, config: ScalerConfig) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code."""
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT, force=True)
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):  # uvloop is a dependency on Linux
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(serve(config))


async def serve(config: ScalerConfig) -> int:
    scaler = build(config)
    try:
        await scaler.start()
    except StartError as exc:
        log.error("cannot start: %s", exc)
        return EXIT_CANNOT_START
    tune_gc()
    log.info("rating-scaler serving: %s", _describe(scaler))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await scaler.stop()
    return EXIT_OK


def _describe(scaler: Scaler) -> str:
    config = scaler.config
    mode = "mTLS" if config.tls_client_ca else "TLS" if config.tls else "plaintext"
    hosts = ",".join(config.allowed_hosts.patterns)
    return (
        f"gRPC on {config.host}:{scaler.grpc_port} ({mode}), HTTP on {config.host}:"
        f"{scaler.http_port}; poll every {config.poll_interval_s:g}s, pod timeout "
        f"{config.pod_timeout_s:g}s, allowed hosts {hosts}"
    )

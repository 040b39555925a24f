"""The project's three services as child processes: their flags, ports and readiness.

`RatingApi(...)`, `RatingScaler(...)` and `RatingActivator(...)` hold the flags one
process is started with (keyword arguments; None keeps the service's own default; free
loopback ports unless given) and build its argv (`sys.executable -m api ...`). `start()` and
`start_async()` spawn one and return when every one of its `ready_urls` answers 2xx.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal, TypedDict, Unpack

from harness.child import Child, spawn
from harness.ready import HOST, READY_TIMEOUT_S, free_port, wait_http_ok, wait_http_ok_async

LogLevel = Literal["debug", "info", "warning", "error"]


def _flag(flag: str, default: object = None, factory: Callable[[], object] | None = None) -> Any:
    """A field given to the service as `flag VALUE` (left out while None)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"flag": flag})
    return field(default=default, metadata={"flag": flag})


@dataclass(frozen=True, kw_only=True)
class Service:
    """What both services share: the argv from the fields' flags, names, readiness."""

    MODULE: ClassVar[str]  # python -m MODULE
    PORTS: ClassVar[dict[str, str]]  # port name: the field that holds it
    READY: ClassVar[tuple[tuple[str, str], ...]]  # (port name, path) that answer 2xx when up
    host: str = _flag("--host", HOST)
    log_level: LogLevel | None = _flag("--log-level")  # noqa: RUF009 (a field(), like the rest)
    extra: tuple[str, ...] = ()  # more flags, as they are written, after the others

    @property
    def name(self) -> str:
        return f"rating-{self.MODULE}"

    @property
    def ports(self) -> dict[str, int]:
        return {name: getattr(self, attr) for name, attr in self.PORTS.items()}

    @property
    def ready_urls(self) -> tuple[str, ...]:
        return tuple(f"http://{HOST}:{self.ports[port]}{path}" for port, path in self.READY)

    def argv(self) -> list[str]:
        given = [(item.metadata.get("flag"), getattr(self, item.name)) for item in fields(self)]
        flags = [
            arg for flag, value in given if flag and value is not None for arg in (flag, value)
        ]
        return [sys.executable, "-m", self.MODULE, *map(str, flags), *self.extra]


@dataclass(frozen=True, kw_only=True)
class RatingApi(Service):
    """One `rating-api`: ports named "public" and "admin"; ready when `/readyz` and the
    admin port's `/metrics` (open even with an admin token) answer."""

    MODULE = "api"
    PORTS = {"public": "port", "admin": "admin_port"}
    READY = (("public", "/readyz"), ("admin", "/metrics"))
    port: int = _flag("--port", factory=free_port)
    admin_port: int = _flag("--admin-port", factory=free_port)
    pod_name: str | None = _flag("--pod-name")
    bucket_capacity: float | None = _flag("--bucket-capacity")
    bucket_rate: float | None = _flag("--bucket-rate")

    @property
    def name(self) -> str:
        return self.pod_name or super().name

    @property
    def rate_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1/rate"

    @property
    def admin_address(self) -> str:
        """`host:port` of the admin port, as the scaler's `endpoints` metadata names it."""
        return f"{HOST}:{self.admin_port}"


@dataclass(frozen=True, kw_only=True)
class RatingScaler(Service):
    """One `rating-scaler`: ports named "grpc" and "http"; ready when `/healthz` answers."""

    MODULE = "scaler"
    PORTS = {"grpc": "grpc_port", "http": "http_port"}
    READY = (("http", "/healthz"),)
    grpc_port: int = _flag("--grpc-port", factory=free_port)
    http_port: int = _flag("--http-port", factory=free_port)
    poll_interval_s: float | None = _flag("--poll-interval")
    pod_timeout_s: float | None = _flag("--pod-timeout")
    poll_workers: int | None = _flag("--poll-workers")

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.grpc_port}"


@dataclass(frozen=True, kw_only=True)
class RatingActivator(Service):
    """One `rating-activator`: ports named "public" and "admin"; ready when the admin
    port's `/readyz` answers. Its pods come from `endpoints_file`."""

    MODULE = "activator"
    PORTS = {"public": "port", "admin": "admin_port"}
    READY = (("admin", "/readyz"),)
    port: int = _flag("--port", factory=free_port)
    admin_port: int = _flag("--admin-port", factory=free_port)
    endpoints_file: Path | None = _flag("--endpoints-file")  # noqa: RUF009
    hold_timeout_s: float | None = _flag("--hold-timeout")
    max_held: int | None = _flag("--max-held")

    @property
    def public_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def admin_address(self) -> str:
        """`host:port` of the admin port, as the scaler's `activatorEndpoints` names it."""
        return f"{HOST}:{self.admin_port}"


class StartOptions(TypedDict, total=False):
    """`name` (the service's own by default), `env` and `cpu` as for `Child`, and the
    `timeout_s` each ready URL has to answer."""

    name: str | None
    env: Mapping[str, str] | None
    cpu: int | None
    timeout_s: float


def start(service: Service, log_path: Path, **options: Unpack[StartOptions]) -> Child:
    """Spawn `service`, logging to `log_path`; returns when all its `ready_urls` answer
    2xx. Raises `StartError`, the child killed, when it exits first or time runs out."""
    with _killed_unless_ready(service, log_path, options) as child:
        for url in service.ready_urls:
            wait_http_ok(url, child, timeout_s=options.get("timeout_s", READY_TIMEOUT_S))
    return child


async def start_async(service: Service, log_path: Path, **options: Unpack[StartOptions]) -> Child:
    """`start()` without blocking the event loop."""
    with _killed_unless_ready(service, log_path, options) as child:
        for url in service.ready_urls:
            timeout_s = options.get("timeout_s", READY_TIMEOUT_S)
            await wait_http_ok_async(url, child, timeout_s=timeout_s)
    return child


@contextmanager
def _killed_unless_ready(
    service: Service, log_path: Path, options: StartOptions
) -> Iterator[Child]:
    name = options.get("name") or service.name
    env, cpu = options.get("env"), options.get("cpu")
    child = spawn(name, service.argv(), log_path, ports=service.ports, env=env, cpu=cpu)
    try:
        yield child
    except BaseException:
        child.kill()
        raise

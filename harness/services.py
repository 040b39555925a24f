"""The project's two services as child processes: their flags, ports and readiness.

`RatingApi(...)` and `RatingScaler(...)` hold the flags one process is started with
(keyword arguments; None keeps the service's own default; free loopback ports unless
given) and build its argv (`sys.executable -m api ...` / `-m scaler ...`). `start()` and
`start_async()` spawn one and return when every one of its `ready_urls` answers 2xx.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from harness.child import Child, spawn
from harness.ready import HOST, READY_TIMEOUT_S, free_port, wait_http_ok, wait_http_ok_async

LogLevel = Literal["debug", "info", "warning", "error"]


class Service(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def ports(self) -> dict[str, int]: ...
    @property
    def ready_urls(self) -> tuple[str, ...]: ...
    def argv(self) -> list[str]: ...


@dataclass(frozen=True, kw_only=True)
class RatingApi:
    """One `rating-api`: ports named "public" and "admin"."""

    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    host: str = HOST
    pod_name: str | None = None
    bucket_capacity: float | None = None
    bucket_rate: float | None = None
    log_level: LogLevel | None = None
    extra: tuple[str, ...] = ()  # more flags, as they are written

    @property
    def name(self) -> str:
        return self.pod_name or "rating-api"

    @property
    def ports(self) -> dict[str, int]:
        return {"public": self.port, "admin": self.admin_port}

    @property
    def ready_urls(self) -> tuple[str, ...]:
        """`/readyz`, and the admin port's `/metrics` (open even with an admin token)."""
        return (f"http://{HOST}:{self.port}/readyz", f"http://{HOST}:{self.admin_port}/metrics")

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "api", "--host", self.host,
            "--port", str(self.port), "--admin-port", str(self.admin_port),
            *_flag("--pod-name", self.pod_name),
            *_flag("--bucket-capacity", self.bucket_capacity),
            *_flag("--bucket-rate", self.bucket_rate),
            *_flag("--log-level", self.log_level),
            *self.extra,
        ]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class RatingScaler:
    """One `rating-scaler`: ports named "grpc" and "http"."""

    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    host: str = HOST
    poll_interval_s: float | None = None
    pod_timeout_s: float | None = None
    log_level: LogLevel | None = None
    extra: tuple[str, ...] = ()  # more flags, as they are written

    @property
    def name(self) -> str:
        return "rating-scaler"

    @property
    def ports(self) -> dict[str, int]:
        return {"grpc": self.grpc_port, "http": self.http_port}

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    @property
    def ready_urls(self) -> tuple[str, ...]:
        return (f"http://{HOST}:{self.http_port}/healthz",)

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "scaler", "--host", self.host,
            "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
            *_flag("--poll-interval", self.poll_interval_s),
            *_flag("--pod-timeout", self.pod_timeout_s),
            *_flag("--log-level", self.log_level),
            *self.extra,
        ]  # fmt: skip


def _flag(flag: str, value: object) -> list[str]:
    return [] if value is None else [flag, str(value)]


def start(
    service: Service,
    log_path: Path,
    *,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    cpu: int | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> Child:
    """Spawn `service` (as `name`, logging to `log_path`, see `Child` for `env` and
    `cpu`); returns when all its `ready_urls` answer 2xx. Raises `StartError`, the
    child killed, when it exits first or `timeout_s` runs out."""
    with _killed_unless_ready(service, log_path, name, env, cpu) as child:
        for url in service.ready_urls:
            wait_http_ok(url, child, timeout_s=timeout_s)
    return child


async def start_async(
    service: Service,
    log_path: Path,
    *,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    cpu: int | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> Child:
    """`start()` without blocking the event loop."""
    with _killed_unless_ready(service, log_path, name, env, cpu) as child:
        for url in service.ready_urls:
            await wait_http_ok_async(url, child, timeout_s=timeout_s)
    return child


@contextmanager
def _killed_unless_ready(
    service: Service,
    log_path: Path,
    name: str | None,
    env: Mapping[str, str] | None,
    cpu: int | None,
) -> Iterator[Child]:
    child = spawn(
        name or service.name, service.argv(), log_path, ports=service.ports, env=env, cpu=cpu
    )
    try:
        yield child
    except BaseException:
        child.kill()
        raise

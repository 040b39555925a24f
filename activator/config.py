"""Configuration of the activator: one frozen dataclass, built from flags and environment.

Every flag `--some-flag` falls back to the environment variable
`RATING_ACTIVATOR_SOME_FLAG`, then to its default; a flag on the command line wins.
`--pod-name` also falls back to `POD_NAME` (the downward API), then to the host name.
This is the only module of the activator that reads `os.environ`.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Literal, get_args

LogLevel = Literal["debug", "info", "warning", "error"]
ENV_PREFIX = "RATING_ACTIVATOR_"
MIB = 1024 * 1024
_NAMESPACED_SERVICE = re.compile(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
)


class ConfigError(ValueError):
    """A setting that cannot work; the message names the flag and its variable."""


@dataclass(frozen=True, slots=True)
class ActivatorConfig:
    """Settings of one rating-activator process; invalid ones raise `ConfigError`."""

    host: str = "0.0.0.0"
    port: int = 8080
    admin_port: int = 9092
    endpoint_slices: str = ""
    """`namespace/service` of the rating pods, read from their EndpointSlices."""
    endpoints_file: str = ""
    """Instead: a file of `host:port` lines, the ready pods' public ports."""
    pod_port: int = 8080
    """With --endpoint-slices: the rating pods' public port."""
    kubeconfig: str = ""
    """With --endpoint-slices: empty means the in-cluster service account."""
    hold_timeout_s: float = 30.0
    max_held: int = 1000
    forward_timeout_s: float = 30.0
    pod_name: str = field(default_factory=socket.gethostname)
    max_body_bytes: int = MIB
    max_header_bytes: int = 16 * 1024
    keep_alive_timeout_s: float = 5.0
    request_timeout_s: float = 10.0
    max_connections: int = 4096
    shutdown_delay_s: float = 0.0
    drain_timeout_s: float = 35.0
    log_level: LogLevel = "info"

    def __post_init__(self) -> None:
        _require(self, "host", bool(self.host), "must not be empty")
        for dest in ("port", "admin_port", "pod_port"):
            _require(
                self, dest, 0 <= getattr(self, dest) <= 65535, "must be a TCP port, 0 to 65535"
            )
        _require(
            self,
            "admin_port",
            self.port != self.admin_port or self.port == 0,
            "must differ from --port: the admin port is never exposed publicly",
        )
        _require(
            self,
            "endpoint_slices",
            bool(self.endpoint_slices) != bool(self.endpoints_file),
            "give exactly one of --endpoint-slices (namespace/service) and --endpoints-file",
        )
        _require(
            self,
            "endpoint_slices",
            not self.endpoint_slices or bool(_NAMESPACED_SERVICE.match(self.endpoint_slices)),
            "must be namespace/service (lower-case DNS labels)",
        )
        _require(self, "hold_timeout_s", _finite_above(self.hold_timeout_s, 0.0), "must be > 0")
        _require(self, "max_held", self.max_held >= 1, "must be >= 1")
        _require(
            self, "forward_timeout_s", _finite_above(self.forward_timeout_s, 0.0), "must be > 0"
        )
        _require(self, "pod_name", bool(self.pod_name), "must not be empty")
        _require(self, "max_body_bytes", self.max_body_bytes >= 1, "must be >= 1")
        _require(self, "max_header_bytes", self.max_header_bytes >= 1024, "must be >= 1024")
        for dest in ("keep_alive_timeout_s", "request_timeout_s"):
            _require(self, dest, _finite_above(getattr(self, dest), 0.0), "must be > 0")
        _require(
            self,
            "max_connections",
            self.max_connections > self.max_held,
            "must be more than --max-held: each held request keeps its connection open",
        )
        for dest in ("shutdown_delay_s", "drain_timeout_s"):
            _require(self, dest, _finite_at_least(getattr(self, dest), 0.0), "must be >= 0")
        _require(
            self, "log_level", self.log_level in get_args(LogLevel), f"must be one of {_LEVELS}"
        )


@dataclass(frozen=True, slots=True)
class _Flag:
    """One command-line flag of `ActivatorConfig`: how to read it and what it means."""

    dest: str
    parse: Callable[[str], object]
    help: str
    metavar: str

    @property
    def flag(self) -> str:
        return "--" + self.dest.removesuffix("_s").replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.flag[2:].replace("-", "_").upper()


def _whole(raw: str) -> int:
    """`int`, but of ASCII only: `int` also takes Arabic-Indic digits and '1_000'."""
    if not raw.isascii() or "_" in raw:
        raise ValueError(raw)
    return int(raw)


def _decimal(raw: str) -> float:
    """`float`, but of ASCII only: `float` also takes Arabic-Indic digits and '1_0'."""
    if not raw.isascii() or "_" in raw:
        raise ValueError(raw)
    return float(raw)


_LEVELS = ", ".join(get_args(LogLevel))
_FLAGS = (
    _Flag("host", str, "bind address for both ports", "ADDR"),
    _Flag("port", _whole, "public port: every path of rating-api's, held or forwarded", "PORT"),
    _Flag(
        "admin_port",
        _whole,
        "admin port: /metrics, /healthz, /readyz, /v1/held (what the scaler reads)",
        "PORT",
    ),
    _Flag(
        "endpoint_slices",
        str,
        "namespace/service of the rating pods: their EndpointSlices (ready, not terminating)",
        "NS/SERVICE",
    ),
    _Flag(
        "endpoints_file",
        str,
        "instead, for local runs: one host:port of a ready pod's public port per line, "
        "re-read when it changes; an empty file means no pod",
        "PATH",
    ),
    _Flag("pod_port", _whole, "with --endpoint-slices: the rating pods' public port", "PORT"),
    _Flag(
        "kubeconfig",
        str,
        "with --endpoint-slices: a kubeconfig file; empty: the in-cluster service account",
        "PATH",
    ),
    _Flag(
        "hold_timeout_s",
        _decimal,
        "most seconds a request waits for a ready pod; then 503 with Retry-After",
        "SECONDS",
    ),
    _Flag("max_held", _whole, "requests held at once; one more gets 503 at once", "N"),
    _Flag(
        "forward_timeout_s",
        _decimal,
        "most seconds a pod may take to answer a forwarded request; then 504",
        "SECONDS",
    ),
    _Flag("pod_name", str, "this activator's name in /v1/held and the logs", "NAME"),
    _Flag("max_body_bytes", _whole, "largest request body; larger gets 413", "BYTES"),
    _Flag(
        "max_header_bytes",
        _whole,
        "largest request line plus headers; larger gets 431 and the connection closes",
        "BYTES",
    ),
    _Flag(
        "keep_alive_timeout_s",
        _decimal,
        "seconds an idle keep-alive connection stays open",
        "SECONDS",
    ),
    _Flag(
        "request_timeout_s",
        _decimal,
        "most seconds a request's headers, then its body, may take to arrive; slower gets 408",
        "SECONDS",
    ),
    _Flag(
        "max_connections",
        _whole,
        "open connections per port (more than --max-held); one more gets 503",
        "N",
    ),
    _Flag(
        "shutdown_delay_s",
        _decimal,
        "seconds to keep serving after SIGTERM while /readyz says 503",
        "SECONDS",
    ),
    _Flag(
        "drain_timeout_s",
        _decimal,
        "most seconds held and in-flight requests get to finish on shutdown",
        "SECONDS",
    ),
    _Flag("log_level", str.lower, f"one of {_LEVELS}", "LEVEL"),
)
_FLAG_BY_DEST = {flag.dest: flag for flag in _FLAGS}


def build_parser() -> argparse.ArgumentParser:
    """The `rating-activator` command line; `--help` documents every flag and its variable."""
    parser = argparse.ArgumentParser(
        prog="rating-activator",
        description="OpenClaw Rating API Edge activator: holds requests while no rating pod "
        "is ready, wakes the fleet through the scaler, and forwards them once a pod is.",
        epilog=f"Every flag can also be set by the environment variable {ENV_PREFIX}<FLAG>, "
        "e.g. --hold-timeout by RATING_ACTIVATOR_HOLD_TIMEOUT; a flag on the command line wins.",
    )
    defaults = {f.name: f.default for f in fields(ActivatorConfig)}
    for flag in _FLAGS:
        default = defaults[flag.dest] if flag.dest != "pod_name" else "$POD_NAME or host name"
        parser.add_argument(
            flag.flag,
            dest=flag.dest,
            metavar=flag.metavar,
            help=f"{flag.help} [env {flag.env}, default {default!r}]",
        )
    return parser


def load(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ActivatorConfig:
    """Parse `argv` with `environ` as fallback; on a bad value print usage and exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return from_values(vars(args), os.environ if environ is None else environ)
    except ConfigError as exc:
        parser.error(str(exc))


def from_values(given: Mapping[str, str | None], environ: Mapping[str, str]) -> ActivatorConfig:
    """An `ActivatorConfig` from raw flag strings (None when not given) and the environment."""
    values: dict[str, object] = {}
    for flag in _FLAGS:
        raw, source = given.get(flag.dest), flag.flag
        if raw is None and flag.env in environ:
            raw, source = environ[flag.env], f"{flag.flag} (from {flag.env})"
        if raw is None and flag.dest == "pod_name":
            raw, source = environ.get("POD_NAME"), f"{flag.flag} (from POD_NAME)"
        if raw is not None:
            values[flag.dest] = _parse(flag, raw, source)
    return ActivatorConfig(**values)  # type: ignore[arg-type]


def describe(config: ActivatorConfig) -> str:
    """One log line: the effective value of every setting, by flag name."""
    return " ".join(f"{flag.flag[2:]}={getattr(config, flag.dest)}" for flag in _FLAGS)


def _parse(flag: _Flag, raw: str, source: str) -> object:
    try:
        return flag.parse(raw.strip())
    except ValueError:
        raise ConfigError(f"{source}: {raw!r} is not a valid {flag.metavar.lower()}") from None


def _require(config: ActivatorConfig, dest: str, ok: bool, message: str) -> None:
    if not ok:
        flag = _FLAG_BY_DEST[dest]
        raise ConfigError(f"{flag.flag} [{flag.env}] {message}, got {getattr(config, dest)!r}")


def _finite_at_least(value: float, low: float) -> bool:
    return math.isfinite(value) and value >= low


def _finite_above(value: float, low: float) -> bool:
    return math.isfinite(value) and value > low

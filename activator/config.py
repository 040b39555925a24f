"""Configuration of the activator: one frozen dataclass, built from flags and environment.

Every flag `--some-flag` falls back to the environment variable
`RATING_ACTIVATOR_SOME_FLAG`, then to its default; a flag on the command line wins
(`common.flags`, as in the other two commands). `--pod-name` also falls back to
`POD_NAME` (the downward API), then to the host name. This is the only module of the
activator that reads `os.environ`.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Literal, get_args

from common.flags import (
    BadValue,
    Setting,
    add_flags,
    describe_settings,
    epilog,
    parse_settings,
    refusal,
)
from common.numbers import finite_above, finite_at_least, parse_decimal, parse_integer

LogLevel = Literal["debug", "info", "warning", "error"]
ENV_PREFIX = "RATING_ACTIVATOR_"
MIB = 1024 * 1024
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
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
    public_service: str = ""
    """The selector-less public Service whose EndpointSlice this keeps; empty: none."""
    activator_service: str = "rating-activator"
    """This activator's own Service: its ready pods take the public traffic at zero."""
    lease: str = "rating-activator"
    """The Lease that keeps one writer of the public EndpointSlice."""
    hold_timeout_s: float = 30.0
    max_held: int = 1000
    max_held_bytes: int = 64 * MIB
    """The held requests' bodies together: the activator's memory at zero is bounded."""
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
        _require(
            self,
            "public_service",
            not self.public_service or bool(self.endpoint_slices),
            "needs --endpoint-slices: the public EndpointSlice lives in the cluster",
        )
        for dest in ("public_service", "activator_service", "lease"):
            name = getattr(self, dest)
            ok = (not name and dest == "public_service") or bool(_DNS_LABEL.match(name))
            _require(self, dest, ok, "must be a lower-case DNS label")
        _require(self, "hold_timeout_s", finite_above(self.hold_timeout_s, 0.0), "must be > 0")
        _require(self, "max_held", self.max_held >= 1, "must be >= 1")
        _require(
            self,
            "max_held_bytes",
            self.max_held_bytes >= self.max_body_bytes,
            "must be at least --max-body-bytes: one largest request must fit",
        )
        _require(
            self, "forward_timeout_s", finite_above(self.forward_timeout_s, 0.0), "must be > 0"
        )
        _require(self, "pod_name", bool(self.pod_name), "must not be empty")
        _require(self, "max_body_bytes", self.max_body_bytes >= 1, "must be >= 1")
        _require(self, "max_header_bytes", self.max_header_bytes >= 1024, "must be >= 1024")
        for dest in ("keep_alive_timeout_s", "request_timeout_s"):
            _require(self, dest, finite_above(getattr(self, dest), 0.0), "must be > 0")
        _require(
            self,
            "max_connections",
            self.max_connections > self.max_held,
            "must be more than --max-held: each held request keeps its connection open",
        )
        for dest in ("shutdown_delay_s", "drain_timeout_s"):
            _require(self, dest, finite_at_least(getattr(self, dest), 0.0), "must be >= 0")
        _require(
            self, "log_level", self.log_level in get_args(LogLevel), f"must be one of {_LEVELS}"
        )


def _setting(dest: str, parse: Callable[[str], object | None], help: str, metavar: str) -> Setting:
    """The field `dest`'s flag, its default as `--help` shows it."""
    default = _FIELDS[dest].default
    shown = "$POD_NAME or host name" if default is MISSING else repr(default)
    return Setting.of(ENV_PREFIX, dest, parse, help, metavar, shown)


_LEVELS = ", ".join(get_args(LogLevel))
_FIELDS = {f.name: f for f in fields(ActivatorConfig)}
_SETTINGS = (
    _setting("host", str, "bind address for both ports", "ADDR"),
    _setting(
        "port", parse_integer, "public port: every path of rating-api's, held or forwarded", "PORT"
    ),
    _setting(
        "admin_port",
        parse_integer,
        "admin port: /metrics, /healthz, /readyz, /v1/held (what the scaler reads)",
        "PORT",
    ),
    _setting(
        "endpoint_slices",
        str,
        "namespace/service of the rating pods: their EndpointSlices (ready, not terminating)",
        "NS/SERVICE",
    ),
    _setting(
        "endpoints_file",
        str,
        "instead, for local runs: one host:port of a ready pod's public port per line, "
        "re-read when it changes; an empty file means no pod",
        "PATH",
    ),
    _setting("pod_port", parse_integer, "with --endpoint-slices: the pods' public port", "PORT"),
    _setting(
        "kubeconfig",
        str,
        "with --endpoint-slices: a kubeconfig file; empty: the in-cluster service account",
        "PATH",
    ),
    _setting(
        "public_service",
        str,
        "the public Service (no selector) whose EndpointSlice this keeps: the ready rating "
        "pods, or this Service's activators while none is; empty: leave it alone",
        "NAME",
    ),
    _setting(
        "activator_service",
        str,
        "the activators' own Service, in the same namespace: its ready pods are the public "
        "Service's endpoints while no rating pod is ready",
        "NAME",
    ),
    _setting(
        "lease",
        str,
        "the Lease (same namespace) that lets one activator at a time write the slice",
        "NAME",
    ),
    _setting(
        "hold_timeout_s",
        parse_decimal,
        "most seconds a request waits for a ready pod; then 503 with Retry-After",
        "SECONDS",
    ),
    _setting("max_held", parse_integer, "requests held at once; one more gets 503 at once", "N"),
    _setting(
        "max_held_bytes",
        parse_integer,
        "the held requests' bodies together; one that would pass it gets 503 at once "
        "(bounds the activator's memory at zero)",
        "BYTES",
    ),
    _setting(
        "forward_timeout_s",
        parse_decimal,
        "most seconds a pod may take to answer a forwarded request; then 504",
        "SECONDS",
    ),
    _setting("pod_name", str, "this activator's name in /v1/held, the Lease and the logs", "NAME"),
    _setting("max_body_bytes", parse_integer, "largest request body; larger gets 413", "BYTES"),
    _setting(
        "max_header_bytes",
        parse_integer,
        "largest request line plus headers; larger gets 431 and the connection closes",
        "BYTES",
    ),
    _setting(
        "keep_alive_timeout_s",
        parse_decimal,
        "seconds an idle keep-alive connection stays open",
        "SECONDS",
    ),
    _setting(
        "request_timeout_s",
        parse_decimal,
        "most seconds a request's headers, then its body, may take to arrive; slower gets 408",
        "SECONDS",
    ),
    _setting(
        "max_connections",
        parse_integer,
        "open connections per port (more than --max-held); one more gets 503",
        "N",
    ),
    _setting(
        "shutdown_delay_s",
        parse_decimal,
        "seconds to keep serving after SIGTERM while /readyz says 503",
        "SECONDS",
    ),
    _setting(
        "drain_timeout_s",
        parse_decimal,
        "most seconds held and in-flight requests get to finish on shutdown",
        "SECONDS",
    ),
    _setting("log_level", str.lower, f"one of {_LEVELS}", "LEVEL"),
)
_SETTING_BY_DEST = {setting.dest: setting for setting in _SETTINGS}


def build_parser() -> argparse.ArgumentParser:
    """The `rating-activator` command line; `--help` documents every flag and its variable."""
    parser = argparse.ArgumentParser(
        prog="rating-activator",
        description="OpenClaw Rating API Edge activator: holds requests while no rating pod "
        "is ready, wakes the fleet through the scaler, and forwards them once a pod is.",
        epilog=epilog(_SETTING_BY_DEST["hold_timeout_s"].flag),
    )
    add_flags(parser, (setting.flag for setting in _SETTINGS))
    return parser


def load(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ActivatorConfig:
    """Parse `argv` with `environ` as fallback; on a bad value print usage and exit 2."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    try:
        values = {s.dest: args[s.flag.name] for s in _SETTINGS}
        return from_values(values, os.environ if environ is None else environ)
    except ConfigError as exc:
        parser.error(str(exc))


def from_values(values: Mapping[str, str | None], environ: Mapping[str, str]) -> ActivatorConfig:
    """An `ActivatorConfig` from raw flag strings by field (None when not given) and the
    environment."""
    try:
        parsed = parse_settings(_SETTINGS, values, environ, also_from={"pod_name": "POD_NAME"})
    except BadValue as exc:
        raise ConfigError(str(exc)) from None
    return ActivatorConfig(**parsed)  # type: ignore[arg-type]


def describe(config: ActivatorConfig) -> str:
    """One log line: the effective value of every setting, by flag name."""
    return describe_settings(_SETTINGS, config)


def _require(config: ActivatorConfig, dest: str, ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(refusal(_SETTING_BY_DEST[dest], config, message))

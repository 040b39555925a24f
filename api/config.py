"""Configuration of the rating service: one frozen dataclass, built from flags and environment.

Every flag `--some-flag` falls back to the environment variable `RATING_API_SOME_FLAG`,
then to its default; a flag on the command line wins (`common.flags`, as in the
scaler). `--pod-name` also falls back to `POD_NAME` (set by Kubernetes through the
downward API), then to the host name. This is the only module that reads `os.environ`.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Literal, get_args

from api import bucket_schema
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
from common.token_file import TokenFileError, read_token

LogLevel = Literal["debug", "info", "warning", "error"]
ENV_PREFIX = "RATING_API_"
MIB = 1024 * 1024


class ConfigError(ValueError):
    """A setting that cannot work; the message names the flag and its variable."""


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Settings of one rating-api process; invalid combinations raise `ConfigError`."""

    host: str = "0.0.0.0"
    port: int = 8080
    admin_port: int = 9090
    bucket_capacity: float = 100.0
    bucket_rate: float = 50.0
    max_batch: int = 1000
    pod_name: str = field(default_factory=socket.gethostname)
    max_body_bytes: int = MIB
    log_level: LogLevel = "info"
    shutdown_delay_s: float = 0.0
    drain_timeout_s: float = 10.0
    admin_token_file: str = ""
    """Empty: `/v1/bucket` is open to whoever reaches the admin port."""
    max_header_bytes: int = 16 * 1024
    keep_alive_timeout_s: float = 5.0
    request_timeout_s: float = 10.0
    max_connections: int = 2048

    def __post_init__(self) -> None:
        _require(self, "host", bool(self.host), "must not be empty")
        _require(self, "port", 0 <= self.port <= 65535, "must be a TCP port, 0 to 65535")
        _require(
            self, "admin_port", 0 <= self.admin_port <= 65535, "must be a TCP port, 0 to 65535"
        )
        _require(
            self,
            "admin_port",
            self.port != self.admin_port or self.port == 0,
            "must differ from --port: the admin port is never exposed publicly",
        )
        # The bucket state reports these three: the scaler rejects what its bounds do not hold.
        _require(
            self,
            "bucket_capacity",
            self.bucket_capacity >= 1.0 and bucket_schema.CAPACITY.holds(self.bucket_capacity),
            f"must be >= 1 and <= {bucket_schema.MAX_TOKENS:g}",
        )
        _require(
            self,
            "bucket_rate",
            self.bucket_rate > 0.0 and bucket_schema.REFILL_PER_S.holds(self.bucket_rate),
            f"must be > 0 and <= {bucket_schema.MAX_TOKENS:g}",
        )
        _require(self, "max_batch", self.max_batch >= 1, "must be >= 1")
        pod_name_problem = bucket_schema.name_problem(self.pod_name)
        _require(self, "pod_name", pod_name_problem is None, str(pod_name_problem))
        _require(self, "max_body_bytes", self.max_body_bytes >= 1, "must be >= 1")
        _require(
            self, "log_level", self.log_level in get_args(LogLevel), f"must be one of {_LEVELS}"
        )
        _require(
            self, "shutdown_delay_s", finite_at_least(self.shutdown_delay_s, 0.0), "must be >= 0"
        )
        _require(
            self, "drain_timeout_s", finite_at_least(self.drain_timeout_s, 0.0), "must be >= 0"
        )
        _require(self, "max_header_bytes", self.max_header_bytes >= 1024, "must be >= 1024")
        _require(
            self,
            "keep_alive_timeout_s",
            finite_above(self.keep_alive_timeout_s, 0.0),
            "must be > 0",
        )
        _require(
            self, "request_timeout_s", finite_above(self.request_timeout_s, 0.0), "must be > 0"
        )
        _require(self, "max_connections", self.max_connections >= 2, "must be >= 2")


def _setting(dest: str, parse: Callable[[str], object | None], help: str, metavar: str) -> Setting:
    """The field `dest`'s flag, its default as `--help` shows it."""
    default = _FIELDS[dest].default
    shown = "$POD_NAME or host name" if default is MISSING else str(default)
    return Setting.of(ENV_PREFIX, dest, parse, help, metavar, shown)


_LEVELS = ", ".join(get_args(LogLevel))
_FIELDS = {f.name: f for f in fields(ApiConfig)}

_SETTINGS = (
    _setting("host", str, "bind address for both ports", "ADDR"),
    _setting(
        "port",
        parse_integer,
        "public port: POST /v1/rate, /healthz, /readyz, /openapi.json",
        "PORT",
    ),
    _setting(
        "admin_port",
        parse_integer,
        "admin port: /metrics, /v1/bucket; never expose it publicly",
        "PORT",
    ),
    _setting("bucket_capacity", parse_decimal, "burst size of the token bucket, tokens", "TOKENS"),
    _setting(
        "bucket_rate",
        parse_decimal,
        "refill, tokens per second: the sustainable load of one pod",
        "PER_S",
    ),
    _setting("max_batch", parse_integer, "most items in one request; more get 413", "N"),
    _setting("pod_name", str, "pod name reported in the bucket state", "NAME"),
    _setting("max_body_bytes", parse_integer, "largest request body; larger gets 413", "BYTES"),
    _setting("log_level", str.lower, f"one of {_LEVELS}", "LEVEL"),
    _setting(
        "shutdown_delay_s",
        parse_decimal,
        "seconds to keep serving after SIGTERM while /readyz says 503, so that load "
        "balancers stop sending first",
        "SECONDS",
    ),
    _setting(
        "drain_timeout_s",
        parse_decimal,
        "most seconds in-flight requests get to finish on shutdown",
        "SECONDS",
    ),
    _setting(
        "admin_token_file",
        str,
        "file holding a bearer token that GET /v1/bucket requires (mount it from a "
        "Secret; re-read when it changes); empty: no token",
        "PATH",
    ),
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
        "most seconds a request's headers, then its body, may take to arrive; "
        "slower gets 408 and the connection closes",
        "SECONDS",
    ),
    _setting(
        "max_connections",
        parse_integer,
        "open connections per port; a request arriving while this many are open gets 503",
        "N",
    ),
)
_SETTING_BY_DEST = {setting.dest: setting for setting in _SETTINGS}


def build_parser() -> argparse.ArgumentParser:
    """The `rating-api` command line; `--help` documents every flag and its variable."""
    parser = argparse.ArgumentParser(
        prog="rating-api",
        description="OpenClaw Rating API Edge: rates batches of items behind a token bucket.",
        epilog=epilog(_SETTING_BY_DEST["bucket_rate"].flag),
    )
    add_flags(parser, (setting.flag for setting in _SETTINGS))
    return parser


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> ApiConfig:
    """Parse `argv` with `environ` as fallback; on a bad value print usage and exit 2."""
    env = os.environ if environ is None else environ
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    try:
        config = from_values({s.dest: args[s.flag.name] for s in _SETTINGS}, env)
        check_files(config)
    except ConfigError as exc:
        parser.error(str(exc))
    return config


def check_files(config: ApiConfig) -> None:
    """Files named by flags must be readable and usable at start-up."""
    if not config.admin_token_file:
        return
    try:
        read_token(config.admin_token_file)
    except TokenFileError as exc:
        raise ConfigError(f"{_SETTING_BY_DEST['admin_token_file'].flag.label} {exc}") from None


def from_values(values: Mapping[str, str | None], environ: Mapping[str, str]) -> ApiConfig:
    """An `ApiConfig` from raw flag strings by field (None when not given) and the
    environment."""
    try:
        parsed = parse_settings(_SETTINGS, values, environ, also_from={"pod_name": "POD_NAME"})
    except BadValue as exc:
        raise ConfigError(str(exc)) from None
    return ApiConfig(**parsed)  # type: ignore[arg-type]


def describe(config: ApiConfig) -> str:
    """One log line: the effective value of every setting, by flag name."""
    return describe_settings(_SETTINGS, config)


def _require(config: ApiConfig, dest: str, ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(refusal(_SETTING_BY_DEST[dest], config, message))

"""Configuration of the rating service: one frozen dataclass, built from flags and environment.

Every flag `--some-flag` falls back to the environment variable `RATING_API_SOME_FLAG`,
then to its default; a flag on the command line wins. `--pod-name` also falls back to
`POD_NAME` (set by Kubernetes through the downward API), then to the host name.
This is the only module that reads `os.environ`.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, get_args

from api import bucket_schema

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
            self, "shutdown_delay_s", _finite_at_least(self.shutdown_delay_s, 0.0), "must be >= 0"
        )
        _require(
            self, "drain_timeout_s", _finite_at_least(self.drain_timeout_s, 0.0), "must be >= 0"
        )
        _require(self, "max_header_bytes", self.max_header_bytes >= 1024, "must be >= 1024")
        _require(
            self,
            "keep_alive_timeout_s",
            _finite_above(self.keep_alive_timeout_s, 0.0),
            "must be > 0",
        )
        _require(
            self, "request_timeout_s", _finite_above(self.request_timeout_s, 0.0), "must be > 0"
        )
        _require(self, "max_connections", self.max_connections >= 2, "must be >= 2")


@dataclass(frozen=True, slots=True)
class _Flag:
    """One command-line flag of `ApiConfig`: how to read it and what it means."""

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
    if not _is_plain_ascii(raw):
        raise ValueError(raw)
    return int(raw)


def _decimal(raw: str) -> float:
    """`float`, but of ASCII only: `float` also takes Arabic-Indic digits and '1_0'."""
    if not _is_plain_ascii(raw):
        raise ValueError(raw)
    return float(raw)


def _is_plain_ascii(raw: str) -> bool:
    return raw.isascii() and "_" not in raw


_LEVELS = ", ".join(get_args(LogLevel))

_FLAGS = (
    _Flag("host", str, "bind address for both ports", "ADDR"),
    _Flag("port", _whole, "public port: POST /v1/rate, /healthz, /readyz, /openapi.json", "PORT"),
    _Flag(
        "admin_port", _whole, "admin port: /metrics, /v1/bucket; never expose it publicly", "PORT"
    ),
    _Flag("bucket_capacity", _decimal, "burst size of the token bucket, tokens", "TOKENS"),
    _Flag(
        "bucket_rate",
        _decimal,
        "refill, tokens per second: the sustainable load of one pod",
        "PER_S",
    ),
    _Flag("max_batch", _whole, "most items in one request; more get 413", "N"),
    _Flag("pod_name", str, "pod name reported in the bucket state", "NAME"),
    _Flag("max_body_bytes", _whole, "largest request body; larger gets 413", "BYTES"),
    _Flag("log_level", str.lower, f"one of {_LEVELS}", "LEVEL"),
    _Flag(
        "shutdown_delay_s",
        _decimal,
        "seconds to keep serving after SIGTERM while /readyz says 503, so that load "
        "balancers stop sending first",
        "SECONDS",
    ),
    _Flag(
        "drain_timeout_s",
        _decimal,
        "most seconds in-flight requests get to finish on shutdown",
        "SECONDS",
    ),
    _Flag(
        "admin_token_file",
        str,
        "file holding a bearer token that GET /v1/bucket requires (mount it from a "
        "Secret; re-read when it changes); empty: no token",
        "PATH",
    ),
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
        "most seconds a request's headers, then its body, may take to arrive; "
        "slower gets 408 and the connection closes",
        "SECONDS",
    ),
    _Flag(
        "max_connections",
        _whole,
        "open connections per port; a request arriving while this many are open gets 503",
        "N",
    ),
)
_FLAG_BY_DEST = {flag.dest: flag for flag in _FLAGS}


def build_parser() -> argparse.ArgumentParser:
    """The `rating-api` command line; `--help` documents every flag and its variable."""
    parser = argparse.ArgumentParser(
        prog="rating-api",
        description="OpenClaw Rating API Edge: rates batches of items behind a token bucket.",
        epilog=f"Every flag can also be set by the environment variable {ENV_PREFIX}<FLAG>, "
        "e.g. --bucket-rate by RATING_API_BUCKET_RATE; a flag on the command line wins.",
    )
    defaults = {f.name: f.default for f in fields(ApiConfig)}
    for flag in _FLAGS:
        default = defaults[flag.dest] if flag.dest != "pod_name" else "$POD_NAME or host name"
        parser.add_argument(
            flag.flag,
            dest=flag.dest,
            metavar=flag.metavar,
            help=f"{flag.help} [env {flag.env}, default {default}]",
        )
    return parser


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> ApiConfig:
    """Parse `argv` with `environ` as fallback; on a bad value print usage and exit 2."""
    env = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = from_values(vars(args), env)
        check_files(config)
    except ConfigError as exc:
        parser.error(str(exc))
    return config


def check_files(config: ApiConfig) -> None:
    """Files named by flags must be readable and usable at start-up."""
    if not config.admin_token_file:
        return
    flag = _FLAG_BY_DEST["admin_token_file"]
    try:
        token = Path(config.admin_token_file).read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{flag.flag} [{flag.env}] cannot be read: {exc}") from None
    if not token:
        raise ConfigError(f"{flag.flag} [{flag.env}] {config.admin_token_file} is empty")


def from_values(given: Mapping[str, str | None], environ: Mapping[str, str]) -> ApiConfig:
    """An `ApiConfig` from raw flag strings (None when not given) and the environment."""
    values: dict[str, object] = {}
    for flag in _FLAGS:
        raw, source = given.get(flag.dest), flag.flag
        if raw is None and flag.env in environ:
            raw, source = environ[flag.env], f"{flag.flag} (from {flag.env})"
        if raw is None and flag.dest == "pod_name":
            raw, source = environ.get("POD_NAME"), f"{flag.flag} (from POD_NAME)"
        if raw is not None:
            values[flag.dest] = _parse(flag, raw, source)
    return ApiConfig(**values)  # type: ignore[arg-type]


def describe(config: ApiConfig) -> str:
    """One log line: the effective value of every setting, by flag name."""
    return " ".join(f"{flag.flag[2:]}={getattr(config, flag.dest)}" for flag in _FLAGS)


def _parse(flag: _Flag, raw: str, source: str) -> object:
    try:
        return flag.parse(raw.strip())
    except ValueError:
        raise ConfigError(f"{source}: {raw!r} is not a valid {flag.metavar.lower()}") from None


def _require(config: ApiConfig, dest: str, ok: bool, message: str) -> None:
    if not ok:
        flag = _FLAG_BY_DEST[dest]
        value = getattr(config, dest)
        raise ConfigError(f"{flag.flag} [{flag.env}] {message}, got {value!r}")


def _finite_at_least(value: float, low: float) -> bool:
    return math.isfinite(value) and value >= low


def _finite_above(value: float, low: float) -> bool:
    return math.isfinite(value) and value > low

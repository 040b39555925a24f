"""The scaler's configuration: flags, each also read from `RATING_SCALER_<FLAG>`.

This is the only module that reads the environment. Values are checked at start-up
and a bad one stops the process with a message that names the flag.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scaler.numbers import parse_decimal, parse_integer
from scaler.policy import HostPolicy

ENV_PREFIX = "RATING_SCALER_"
DEFAULT_ALLOWED_HOSTS = "*.svc.cluster.local,localhost,127.0.0.1"
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_TARGETS = 100_000
MAX_IN_FLIGHT = 10_000
DEFAULT_HOST_POLICY = HostPolicy(tuple(DEFAULT_ALLOWED_HOSTS.split(",")))


@dataclass(frozen=True, slots=True)
class ScalerConfig:
    host: str = "0.0.0.0"
    grpc_port: int = 6000
    http_port: int = 9102
    poll_interval_s: float = 1.0
    pod_timeout_s: float = 0.25
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    allowed_hosts: HostPolicy = DEFAULT_HOST_POLICY
    dns_server: tuple[str, int] | None = None
    pod_token_file: Path | None = None
    kubeconfig: Path | None = None
    forget_after_s: float = 600.0
    max_targets: int = 1000
    max_in_flight: int = 64
    shutdown_grace_s: float = 5.0
    log_level: str = "info"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


class ConfigError(ValueError):
    """A flag's value is unusable; the message names the flag."""


@dataclass(frozen=True, slots=True)
class _Flag:
    """One flag: its default as a string (None: unset), its metavar, and its help."""

    name: str
    default: str | None
    metavar: str
    help: str
    shown_default: str | None = None  # how --help names the default, when not the value

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper().replace("-", "_")


FLAGS = (
    _Flag("host", "0.0.0.0", "ADDR", "address both ports bind to"),
    _Flag(
        "grpc-port",
        "6000",
        "PORT",
        "gRPC port: externalscaler.ExternalScaler, grpc.health.v1, reflection",
    ),
    _Flag("http-port", "9102", "PORT", "HTTP port: /metrics, /healthz, /readyz, /v1/targets"),
    _Flag("poll-interval", "1.0", "SECONDS", "seconds between polls of one target's pods"),
    _Flag("pod-timeout", "0.25", "SECONDS", "seconds one pod may take to answer"),
    _Flag("tls-cert", None, "PATH", "PEM certificate for the gRPC port (enables TLS)", "none"),
    _Flag("tls-key", None, "PATH", "PEM private key for --tls-cert", "none"),
    _Flag(
        "tls-client-ca",
        None,
        "PATH",
        "PEM CA bundle; when set, clients must present a certificate it signed (mTLS)",
        "none",
    ),
    _Flag(
        "allowed-hosts",
        DEFAULT_ALLOWED_HOSTS,
        "GLOBS",
        "comma-separated host patterns that `service` and `endpoints` triggers may name",
    ),
    _Flag(
        "dns-server",
        None,
        "ADDR",
        "IP address (with an optional :port) of the DNS server for `service` lookups",
        "the servers of /etc/resolv.conf",
    ),
    _Flag(
        "pod-token-file",
        None,
        "PATH",
        "file holding a bearer token sent to the pods' /v1/bucket (re-read when it changes)",
        "none: no token",
    ),
    _Flag(
        "kubeconfig",
        None,
        "PATH",
        "kubeconfig for reading `endpointSlices` targets from the Kubernetes API",
        "the pod's in-cluster configuration",
    ),
    _Flag(
        "forget-after",
        "600",
        "SECONDS",
        "seconds after which a target nobody asks about is forgotten",
    ),
    _Flag(
        "max-targets",
        "1000",
        "N",
        "targets (distinct sets of pods) polled at once; a trigger naming one more is "
        "refused with RESOURCE_EXHAUSTED",
    ),
    _Flag(
        "max-in-flight",
        "64",
        "N",
        "pod requests in flight at once, all targets together; a pod whose turn does not "
        "come within one poll interval counts as a timeout for that cycle",
    ),
    _Flag(
        "shutdown-grace", "5", "SECONDS", "seconds in-flight calls may take to finish after SIGTERM"
    ),
    _Flag("log-level", "info", "LEVEL", f"one of {', '.join(LOG_LEVELS)}"),
)


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The `rating-scaler` command line; `--help` documents every flag and its variable."""
    parser = argparse.ArgumentParser(
        prog="rating-scaler",
        description=(
            "KEDA external scaler for the OpenClaw Rating API Edge: polls every rating pod's "
            "token bucket about once a second and answers KEDA's ExternalScaler gRPC calls "
            "from memory."
        ),
        epilog=f"Every flag can also be set by the environment variable {ENV_PREFIX}<FLAG>, "
        "e.g. --poll-interval by RATING_SCALER_POLL_INTERVAL; a flag on the command line wins.",
    )
    for flag in FLAGS:
        shown = flag.shown_default if flag.shown_default is not None else flag.default
        parser.add_argument(
            f"--{flag.name}",
            default=env.get(flag.env, flag.default),
            metavar=flag.metavar,
            help=f"{flag.help} [env {flag.env}, default {shown}]",
        )
    return parser


def load(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ScalerConfig:
    """Parse flags (falling back to the environment) into a checked config."""
    environment = os.environ if env is None else env
    args = build_parser(environment).parse_args(argv)
    config = ScalerConfig(
        host=_host(args.host),
        grpc_port=_port("--grpc-port", args.grpc_port),
        http_port=_port("--http-port", args.http_port),
        poll_interval_s=_seconds("--poll-interval", args.poll_interval, 0.05, 3600),
        pod_timeout_s=_seconds("--pod-timeout", args.pod_timeout, 0.01, 60),
        tls_cert=_file("--tls-cert", args.tls_cert),
        tls_key=_file("--tls-key", args.tls_key),
        tls_client_ca=_file("--tls-client-ca", args.tls_client_ca),
        allowed_hosts=_hosts(args.allowed_hosts),
        dns_server=_dns_server(args.dns_server),
        pod_token_file=_file("--pod-token-file", args.pod_token_file),
        kubeconfig=_file("--kubeconfig", args.kubeconfig),
        forget_after_s=_seconds("--forget-after", args.forget_after, 1, 86400),
        max_targets=_count("--max-targets", args.max_targets, 1, MAX_TARGETS),
        max_in_flight=_count("--max-in-flight", args.max_in_flight, 1, MAX_IN_FLIGHT),
        shutdown_grace_s=_seconds("--shutdown-grace", args.shutdown_grace, 0, 600),
        log_level=_choice("--log-level", args.log_level, LOG_LEVELS),
    )
    _check_tls(config)
    if config.tls:
        read_tls(config)  # a bad file stops the start here, named by its flag
    if config.pod_timeout_s >= config.poll_interval_s:
        raise ConfigError(
            f"--pod-timeout ({config.pod_timeout_s:g}s) must be shorter than --poll-interval "
            f"({config.poll_interval_s:g}s), or polls would overlap"
        )
    return config


def _host(value: str) -> str:
    if not value or any(ch.isspace() for ch in value):
        raise ConfigError(f"--host: {value!r} is not an address")
    return value


def _port(flag: str, value: str) -> int:
    number = parse_integer(value.strip())
    if number is None or not 0 <= number <= 65535:
        raise ConfigError(f"{flag}: {value!r} is not a port number (0-65535)")
    return number


def _count(flag: str, value: str, low: int, high: int) -> int:
    number = parse_integer(value.strip())
    if number is None or not low <= number <= high:
        raise ConfigError(f"{flag}: {value!r} is not a whole number in [{low}, {high}]")
    return number


def _seconds(flag: str, value: str, low: float, high: float) -> float:
    number = parse_decimal(value.strip())
    if number is None or not low <= number <= high:
        raise ConfigError(f"{flag}: {value!r} is not a number of seconds in [{low:g}, {high:g}]")
    return number


def _file(flag: str, value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if path.is_dir():
        raise ConfigError(f"{flag}: {value} is a directory, not a file")
    if not path.is_file():
        raise ConfigError(f"{flag}: no such file: {value}")
    return path


def _hosts(value: str) -> HostPolicy:
    patterns = tuple(part.strip() for part in value.split(",") if part.strip())
    if not patterns:
        raise ConfigError("--allowed-hosts: give at least one host pattern")
    return HostPolicy(patterns)


def _dns_server(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or (":" in host and not host.startswith("[")):
        host, port = value, "53"
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = ""
    number = parse_integer(port)
    if not host or number is None or not 1 <= number <= 65535:
        raise ConfigError(f"--dns-server: {value!r} is not an IP address with an optional :port")
    return host, number


def _choice(flag: str, value: str, choices: Sequence[str]) -> str:
    if value.lower() not in choices:
        raise ConfigError(f"{flag}: {value!r} is not one of {', '.join(choices)}")
    return value.lower()


def _check_tls(config: ScalerConfig) -> None:
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key must be given together")
    if config.tls_client_ca is not None and config.tls_cert is None:
        raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key (mTLS is on top of TLS)")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    key: bytes
    cert: bytes
    client_ca: bytes | None


_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def read_tls(config: ScalerConfig) -> TlsFiles:
    """Read and check the TLS files; ConfigError says which flag's file is wrong, and how."""
    assert config.tls_cert is not None and config.tls_key is not None
    cert = _pem("--tls-cert", config.tls_cert, "CERTIFICATE")
    key = _pem("--tls-key", config.tls_key, "PRIVATE KEY")
    ca_path = config.tls_client_ca
    client_ca = _pem("--tls-client-ca", ca_path, "CERTIFICATE") if ca_path else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_certificates("--tls-cert", config.tls_cert, context, cert)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key, password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            problem = f"the key does not match the certificate in --tls-cert ({config.tls_cert})"
        else:
            problem = f"not a usable PEM private key, or an encrypted one ({exc.reason})"
        raise ConfigError(f"--tls-key: {config.tls_key}: {problem}") from None
    if client_ca is not None and ca_path is not None:
        _load_certificates("--tls-client-ca", ca_path, context, client_ca)
    return TlsFiles(key, cert, client_ca)


def _pem(flag: str, path: Path, kind: str) -> bytes:
    """The file's bytes, once it is known to hold a PEM block of that kind."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot read {path}: {exc.strerror}") from None
    labels = [label.decode() for label in _PEM_LABEL.findall(data)]
    if not any(label.endswith(kind) for label in labels):
        found = f"PEM blocks {', '.join(labels)}" if labels else "no PEM block"
        raise ConfigError(f"{flag}: {path} is not a PEM {kind.lower()} ({found})")
    return data


def _load_certificates(flag: str, path: Path, context: ssl.SSLContext, data: bytes) -> None:
    try:
        context.load_verify_locations(cadata=data.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{flag}: {path}: not a valid PEM certificate ({exc})") from None

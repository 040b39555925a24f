"""The scaler's configuration: flags, each also read from `RATING_SCALER_<FLAG>`.

This is the only module that reads the environment, through `common.flags` as the
rating service does. Values are checked at start-up and a bad one stops the process
with a message that names the flag (and its variable, when the value came from there).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.flags import Flag, Given, add_flags, epilog, given
from common.numbers import parse_decimal, parse_integer
from common.token_file import TokenFileError, read_token
from scaler.policy import HostPolicy

ENV_PREFIX = "RATING_SCALER_"
DEFAULT_ALLOWED_HOSTS = "*.svc.cluster.local,localhost,127.0.0.1"
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_TARGETS = 100_000
MAX_IN_FLIGHT = 10_000
MAX_POLL_WORKERS = 64
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"
CGROUP_V1_CPU = Path(
    "/sys/fs/cgroup/cpu"
)  # cgroup v1: cpu.cfs_quota_us (-1: none), cpu.cfs_period_us
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
    poll_workers: int = 0  # 0: poll in this process; the flag's default is the CPUs available
    shutdown_grace_s: float = 5.0
    log_level: str = "info"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


class ConfigError(ValueError):
    """A flag's value is unusable; the message names the flag."""


def _flag(
    name: str, default: str | None, metavar: str, help: str, shown_default: str | None = None
) -> Flag:
    """A flag read from `RATING_SCALER_<NAME>` too; a `default` of None: unset."""
    return Flag(ENV_PREFIX, name, metavar, help, default, shown_default)


FLAGS = (
    _flag("host", "0.0.0.0", "ADDR", "address both ports bind to"),
    _flag(
        "grpc-port",
        "6000",
        "PORT",
        "gRPC port: externalscaler.ExternalScaler, grpc.health.v1, reflection",
    ),
    _flag("http-port", "9102", "PORT", "HTTP port: /metrics, /healthz, /readyz, /v1/targets"),
    _flag("poll-interval", "1.0", "SECONDS", "seconds between polls of one target's pods"),
    _flag("pod-timeout", "0.25", "SECONDS", "seconds one pod may take to answer"),
    _flag("tls-cert", None, "PATH", "PEM certificate for the gRPC port (enables TLS)", "none"),
    _flag("tls-key", None, "PATH", "PEM private key for --tls-cert", "none"),
    _flag(
        "tls-client-ca",
        None,
        "PATH",
        "PEM CA bundle; when set, clients must present a certificate it signed (mTLS)",
        "none",
    ),
    _flag(
        "allowed-hosts",
        DEFAULT_ALLOWED_HOSTS,
        "GLOBS",
        "comma-separated host patterns that `service` and `endpoints` triggers may name",
    ),
    _flag(
        "dns-server",
        None,
        "ADDR",
        "IP address (with an optional :port) of the DNS server for `service` lookups",
        "the servers of /etc/resolv.conf",
    ),
    _flag(
        "pod-token-file",
        None,
        "PATH",
        "file holding a bearer token sent to the pods' /v1/bucket (re-read when it changes)",
        "none: no token",
    ),
    _flag(
        "kubeconfig",
        None,
        "PATH",
        "kubeconfig for reading `endpointSlices` targets from the Kubernetes API",
        "the pod's in-cluster configuration",
    ),
    _flag(
        "forget-after",
        "600",
        "SECONDS",
        "seconds after which a target nobody asks about is forgotten",
    ),
    _flag(
        "max-targets",
        "1000",
        "N",
        "targets (distinct sets of pods) polled at once; a trigger naming one more is "
        "refused with RESOURCE_EXHAUSTED",
    ),
    _flag(
        "max-in-flight",
        "64",
        "N",
        "pod requests in flight at once, all targets together; a pod whose turn does not "
        "come within one poll interval counts as a timeout for that cycle",
    ),
    _flag(
        "poll-workers",
        None,
        "N",
        "processes that poll the pods, each a shard of them (by address), and hand their "
        "sums to the process that answers gRPC and HTTP; 0 polls in that process",
        "the CPUs available, 0 on one",
    ),
    _flag(
        "shutdown-grace", "5", "SECONDS", "seconds in-flight calls may take to finish after SIGTERM"
    ),
    _flag("log-level", "info", "LEVEL", f"one of {', '.join(LOG_LEVELS)}"),
)


def build_parser() -> argparse.ArgumentParser:
    """The `rating-scaler` command line; `--help` documents every flag and its variable."""
    parser = argparse.ArgumentParser(
        prog="rating-scaler",
        description=(
            "KEDA external scaler for the OpenClaw Rating API Edge: polls every rating pod's "
            "token bucket about once a second and answers KEDA's ExternalScaler gRPC calls "
            "from memory."
        ),
        epilog=epilog(next(flag for flag in FLAGS if flag.name == "poll-interval")),
    )
    add_flags(parser, FLAGS)
    return parser


def load(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ScalerConfig:
    """Parse flags (falling back to the environment) into a checked config."""
    environment = os.environ if env is None else env
    values = given(FLAGS, vars(build_parser().parse_args(argv)), environment)
    config = ScalerConfig(
        host=_host(values["host"]),
        grpc_port=_port(values["grpc-port"]),
        http_port=_port(values["http-port"]),
        poll_interval_s=_seconds(values["poll-interval"], 0.05, 3600),
        pod_timeout_s=_seconds(values["pod-timeout"], 0.01, 60),
        tls_cert=_file(values.get("tls-cert")),
        tls_key=_file(values.get("tls-key")),
        tls_client_ca=_file(values.get("tls-client-ca")),
        allowed_hosts=_hosts(values["allowed-hosts"]),
        dns_server=_dns_server(values.get("dns-server")),
        pod_token_file=_token_file(values.get("pod-token-file")),
        kubeconfig=_file(values.get("kubeconfig")),
        forget_after_s=_seconds(values["forget-after"], 1, 86400),
        max_targets=_count(values["max-targets"], 1, MAX_TARGETS),
        max_in_flight=_count(values["max-in-flight"], 1, MAX_IN_FLIGHT),
        poll_workers=_poll_workers(values.get("poll-workers")),
        shutdown_grace_s=_seconds(values["shutdown-grace"], 0, 600),
        log_level=_choice(values["log-level"], LOG_LEVELS),
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


def _poll_workers(value: Given | None) -> int:
    if value is None:
        return default_poll_workers()
    return _count(value, 0, MAX_POLL_WORKERS)


def default_poll_workers() -> int:
    """One worker per CPU available, or none on one CPU: a worker sharing the main
    process's only core adds the hand-over and gave the RPCs no steadier latency
    (docs/BENCHMARKS.md, "Poll workers")."""
    cpus = available_cpus()
    return min(cpus, MAX_POLL_WORKERS) if cpus >= 2 else 0


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX, cgroup_v1: Path = CGROUP_V1_CPU) -> int:
    """The CPUs this process may use: those it may run on (its affinity, as a cpuset
    sets it), and no more than its cgroup's CPU quota rounded up (a container's CPU
    limit of 1 on a 64-core node is 1, where the affinity alone says 64), read from
    cgroup v2's cpu.max or, on a cgroup v1 node, cpu.cfs_quota_us and cpu.cfs_period_us."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cpu_quota(cpu_max, cgroup_v1)
    return cpus if quota is None else max(1, min(cpus, math.ceil(quota)))


def _cpu_quota(cpu_max: Path, cgroup_v1: Path) -> float | None:
    """The cgroup's CPU quota in CPUs, or None when it has none or it cannot be read."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (cgroup_v1 / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup_v1 / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    if not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None  # "max" (v2) or "-1" (v1): no quota
    return int(quota) / int(period)


def _host(value: Given) -> str:
    if not value.text or any(ch.isspace() for ch in value.text):
        raise ConfigError(f"{value.source}: {value.text!r} is not an address")
    return value.text


def _port(value: Given) -> int:
    number = parse_integer(value.text.strip())
    if number is None or not 0 <= number <= 65535:
        raise ConfigError(f"{value.source}: {value.text!r} is not a port number (0-65535)")
    return number


def _count(value: Given, low: int, high: int) -> int:
    number = parse_integer(value.text.strip())
    if number is None or not low <= number <= high:
        raise ConfigError(
            f"{value.source}: {value.text!r} is not a whole number in [{low}, {high}]"
        )
    return number


def _seconds(value: Given, low: float, high: float) -> float:
    number = parse_decimal(value.text.strip())
    if number is None or not low <= number <= high:
        raise ConfigError(
            f"{value.source}: {value.text!r} is not a number of seconds in [{low:g}, {high:g}]"
        )
    return number


def _file(value: Given | None) -> Path | None:
    if value is None or not value.text:
        return None
    path = Path(value.text)
    if path.is_dir():
        raise ConfigError(f"{value.source}: {value.text} is a directory, not a file")
    if not path.is_file():
        raise ConfigError(f"{value.source}: no such file: {value.text}")
    return path


def _token_file(value: Given | None) -> Path | None:
    """A file that holds a usable token now: the rating service's rule for its own."""
    path = _file(value)
    if path is not None and value is not None:
        try:
            read_token(path)
        except TokenFileError as exc:
            raise ConfigError(f"{value.source}: {exc}") from None
    return path


def _hosts(value: Given) -> HostPolicy:
    patterns = tuple(part.strip() for part in value.text.split(",") if part.strip())
    if not patterns:
        raise ConfigError(f"{value.source}: give at least one host pattern")
    return HostPolicy(patterns)


def _dns_server(value: Given | None) -> tuple[str, int] | None:
    if value is None or not value.text:
        return None
    host, sep, port = value.text.rpartition(":")
    if not sep or (":" in host and not host.startswith("[")):
        host, port = value.text, "53"
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = ""
    number = parse_integer(port)
    if not host or number is None or not 1 <= number <= 65535:
        raise ConfigError(
            f"{value.source}: {value.text!r} is not an IP address with an optional :port"
        )
    return host, number


def _choice(value: Given, choices: Sequence[str]) -> str:
    if value.text.lower() not in choices:
        raise ConfigError(f"{value.source}: {value.text!r} is not one of {', '.join(choices)}")
    return value.text.lower()


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

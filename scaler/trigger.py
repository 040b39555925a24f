"""Trigger metadata (`ScaledObject.spec.triggers[].metadata`) parsed into a frozen config.

KEDA sends every key, its own `scalerAddress` included; unknown keys are ignored. A
bad value raises `MetadataError` naming the key and what it accepts, which the RPC
layer turns into INVALID_ARGUMENT.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from common.numbers import parse_decimal, parse_integer
from scaler.policy import HostPolicy, namespace_problem
from scaler.target_key import ActivatorKey, TargetKey

Metric = Literal["demand", "deficit"]
METRICS: tuple[Metric, ...] = ("demand", "deficit")
Forecast = Literal["off", "recurring"]
FORECASTS: tuple[Forecast, ...] = ("off", "recurring")
MIN_LEAD_S, MAX_LEAD_S = 1.0, 600.0
MAX_ENDPOINTS = 5000
# Every number of a trigger lies in a closed range, so that no value (5e-324 as a
# target per pod, say) can make the maths overflow further on.
MIN_WINDOW_S, MAX_WINDOW_S = 0.1, 300.0
MIN_TARGET = 0.001  # tokens/s or tokens per pod: KEDA keeps 3 decimals
MAX_TARGET = 1e9  # far beyond any real bucket
MIN_UTILIZATION = 0.01
_NAMESPACED_SERVICE = re.compile(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
)
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$"
)


class MetadataError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"metadata {key!r}: {problem}")
        self.key = key


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    target: TargetKey
    metric: Metric
    target_utilization: float
    target_per_pod: float | None
    activation_demand: float
    window_s: float
    forecast: Forecast = "off"
    forecast_lead_s: float = 30.0

    @property
    def metric_name(self) -> str:
        return f"openclaw-{self.metric}"


def parse_trigger(metadata: Mapping[str, str], hosts: HostPolicy) -> TriggerConfig:
    port = _integer(metadata, "port", 9090, 1, 65535)
    activator = _activator(metadata, hosts)
    return TriggerConfig(
        target=_target(metadata, port, hosts, activator),
        metric=_metric(metadata),
        target_utilization=_number(metadata, "targetUtilization", 0.8, MIN_UTILIZATION, 1.0),
        target_per_pod=_optional_number(metadata, "targetPerPod", MIN_TARGET, MAX_TARGET),
        activation_demand=_number(metadata, "activationDemand", 0.0, 0.0, MAX_TARGET),
        window_s=_number(metadata, "window", 5.0, MIN_WINDOW_S, MAX_WINDOW_S),
        forecast=_forecast(metadata),
        forecast_lead_s=_number(metadata, "forecastLead", 30.0, MIN_LEAD_S, MAX_LEAD_S),
    )


def _value(metadata: Mapping[str, str], key: str) -> str | None:
    value = metadata.get(key)
    return value.strip() if value is not None and value.strip() else None


TARGET_KEYS = ("endpointSlices", "service", "endpoints")
ACTIVATOR_KEYS = ("activator", "activatorEndpoints")
ACTIVATOR_PORT = 9092  # rating-activator's --admin-port


def _target(
    metadata: Mapping[str, str], port: int, hosts: HostPolicy, activator: ActivatorKey | None
) -> TargetKey:
    given = [key for key in TARGET_KEYS if _value(metadata, key)]
    if len(given) > 1:
        raise MetadataError(given[1], f"give one of {', '.join(TARGET_KEYS)}, not {given[0]} too")
    if not given and activator is not None:  # a fleet at zero has no pods to name
        return TargetKey(service=None, endpoints=(), port=port, activator=activator)
    if not given:
        raise MetadataError(
            "endpointSlices",
            "required: endpointSlices (namespace/service), service (the DNS name of a headless "
            "Service) or endpoints (host:port,...), or activator (namespace/service)",
        )
    key, value = given[0], _value(metadata, given[0]) or ""
    if key == "endpointSlices":
        slices = _slices("endpointSlices", value)
        return TargetKey(None, (), port, endpoint_slices=slices, activator=activator)
    if key == "service":
        name = value.lower().rstrip(".")
        if not _DNS_NAME.match(name):
            raise MetadataError("service", f"{value[:80]!r} is not a DNS name")
        _check_allowed("service", name, hosts)
        return TargetKey(service=name, endpoints=(), port=port, activator=activator)
    endpoints = _endpoints("endpoints", value, port, hosts)
    return TargetKey(service=None, endpoints=endpoints, port=port, activator=activator)


def _activator(metadata: Mapping[str, str], hosts: HostPolicy) -> ActivatorKey | None:
    """The activators of the fleet, from `activator` or `activatorEndpoints` (and
    `activatorPort`, their admin port), or None."""
    given = [key for key in ACTIVATOR_KEYS if _value(metadata, key)]
    if len(given) > 1:
        raise MetadataError(given[1], "give one of activator, activatorEndpoints, not both")
    port = _integer(metadata, "activatorPort", ACTIVATOR_PORT, 1, 65535)
    if not given:
        return None
    value = _value(metadata, given[0]) or ""
    if given[0] == "activator":
        return ActivatorKey(_slices("activator", value), (), port)
    return ActivatorKey(None, _endpoints("activatorEndpoints", value, port, hosts), port)


def _slices(key: str, value: str) -> str:
    if not _NAMESPACED_SERVICE.match(value):
        raise MetadataError(key, f"{value[:80]!r} is not namespace/service (lower-case DNS labels)")
    return value


def _endpoints(
    key: str, raw: str, default_port: int, hosts: HostPolicy
) -> tuple[tuple[str, int], ...]:
    items = [item.strip() for item in raw.split(",")]
    if not all(items):
        raise MetadataError(key, f"{raw[:80]!r} has an empty entry: give host:port,...")
    if len(items) > MAX_ENDPOINTS:
        raise MetadataError(key, f"at most {MAX_ENDPOINTS} entries, got {len(items)}")
    parsed = [_host_port(key, item, default_port) for item in items]
    for host, _ in parsed:
        _check_allowed(key, host, hosts)
    return tuple(sorted(set(parsed)))


def _host_port(key: str, item: str, default_port: int) -> tuple[str, int]:
    host, sep, port_text = item.rpartition(":")
    if not sep or (host.count(":") and not host.startswith("[")):
        host, port_text = item, ""  # no port, or a bare IPv6 address
    host = host.strip("[]").lower()
    port = default_port
    if port_text:
        number = parse_integer(port_text)
        if number is None or not 1 <= number <= 65535:
            raise MetadataError(key, f"{item[:80]!r}: port must be 1..65535")
        port = number
    if not _is_ip(host) and not _DNS_NAME.match(host):
        raise MetadataError(key, f"{item[:80]!r}: expected host:port")
    return host, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_allowed(key: str, host: str, hosts: HostPolicy) -> None:
    problem = hosts.problem(host)
    if problem is not None:
        raise MetadataError(key, problem)


def check_namespace(trigger: TriggerConfig, namespace: str) -> TriggerConfig:
    """The trigger, if a ScaledObject in `namespace` may use it (`policy.namespace_problem`)."""
    problem = namespace_problem(trigger.target.endpoint_slices, namespace)
    if problem is not None:
        raise MetadataError("endpointSlices", problem)
    activator = trigger.target.activator
    problem = namespace_problem(activator.endpoint_slices if activator else None, namespace)
    if problem is not None:
        raise MetadataError("activator", problem)
    return trigger


def _metric(metadata: Mapping[str, str]) -> Metric:
    value = _value(metadata, "metric") or "demand"
    for metric in METRICS:
        if value == metric:
            return metric
    raise MetadataError("metric", f"{value[:40]!r} is not one of {', '.join(METRICS)}")


def _forecast(metadata: Mapping[str, str]) -> Forecast:
    value = _value(metadata, "forecast") or "off"
    for forecast in FORECASTS:
        if value == forecast:
            if forecast == "recurring" and (_value(metadata, "metric") or "demand") != "demand":
                raise MetadataError("forecast", "recurring forecasts demand: needs metric demand")
            return forecast
    raise MetadataError("forecast", f"{value[:40]!r} is not one of {', '.join(FORECASTS)}")


def _integer(metadata: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    value = _value(metadata, key)
    if value is None:
        return default
    number = parse_integer(value)
    if number is None or not low <= number <= high:
        raise MetadataError(key, f"{value[:40]!r} is not an integer in {low}..{high}")
    return number


def _optional_number(
    metadata: Mapping[str, str], key: str, low: float, high: float
) -> float | None:
    if _value(metadata, key) is None:
        return None
    return _number(metadata, key, 0.0, low, high)


def _number(
    metadata: Mapping[str, str], key: str, default: float, low: float, high: float
) -> float:
    """An ASCII decimal in [low, high]."""
    value = _value(metadata, key)
    if value is None:
        return default
    number = parse_decimal(value)
    if number is None or not low <= number <= high:
        raise MetadataError(key, f"{value[:40]!r} is not a number in [{low:g}, {high:g}]")
    return number

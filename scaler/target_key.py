"""`TargetKey`: the name of one set of rating pods, which one poller polls.

This module imports nothing from the project, so that every other module can use it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def join_host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class ActivatorKey:
    """The activators in front of a fleet, whose held requests count as its demand."""

    endpoint_slices: str | None  # `namespace/service` of their admin Service
    endpoints: tuple[tuple[str, int], ...]  # or a fixed list of admin ports
    port: int

    @property
    def label(self) -> str:
        if self.endpoint_slices is not None:
            return f"{self.endpoint_slices}:{self.port}"
        return _listed(self.endpoints)


@dataclass(frozen=True, slots=True)
class TargetKey:
    """A set of rating pods: ScaledObjects that name the same pods share one poller."""

    service: str | None  # DNS name of a headless Service
    endpoints: tuple[tuple[str, int], ...]  # or a fixed list
    port: int
    endpoint_slices: str | None = None  # or `namespace/service`, read from the API
    activator: ActivatorKey | None = None  # and the activators holding requests for them
    label: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", self._label())  # built once: logs and metrics use it

    @property
    def has_pods(self) -> bool:
        """False for a trigger that names only activators."""
        return bool(self.endpoint_slices or self.service or self.endpoints)

    def _label(self) -> str:
        """Short, stable name for logs and metric labels."""
        pods = self._pods_label()
        if self.activator is None:
            return pods
        held = f"activator {self.activator.label}"
        return f"{pods} + {held}" if self.has_pods else held

    def _pods_label(self) -> str:
        if self.endpoint_slices is not None:
            return f"{self.endpoint_slices}:{self.port}"
        if self.service is not None:
            return f"{self.service}:{self.port}"
        return _listed(self.endpoints)


def _listed(endpoints: tuple[tuple[str, int], ...]) -> str:
    joined = ",".join(join_host_port(host, port) for host, port in endpoints)
    if len(endpoints) <= 3:
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:10]
    first = join_host_port(*endpoints[0])
    return f"{first}+{len(endpoints) - 1}more#{digest}"

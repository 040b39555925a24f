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
class TargetKey:
    """A set of rating pods: ScaledObjects that name the same pods share one poller."""

    service: str | None  # DNS name of a headless Service
    endpoints: tuple[tuple[str, int], ...]  # or a fixed list
    port: int
    endpoint_slices: str | None = None  # or `namespace/service`, read from the API
    label: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", self._label())  # built once: logs and metrics use it

    def _label(self) -> str:
        """Short, stable name for logs and metric labels."""
        if self.endpoint_slices is not None:
            return f"{self.endpoint_slices}:{self.port}"
        if self.service is not None:
            return f"{self.service}:{self.port}"
        joined = ",".join(join_host_port(host, port) for host, port in self.endpoints)
        if len(self.endpoints) <= 3:
            return joined
        digest = hashlib.sha256(joined.encode()).hexdigest()[:10]
        first = join_host_port(*self.endpoints[0])
        return f"{first}+{len(self.endpoints) - 1}more#{digest}"

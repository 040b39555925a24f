"""What a trigger may make the scaler poll: the allowed hosts and the namespace rule.

Both guard against a ScaledObject turning the scaler on pods it should not reach
(SSRF through `service`/`endpoints`, or another team's EndpointSlices). This module
imports nothing from the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Which hosts the scaler may poll: glob patterns such as `*.svc.cluster.local`."""

    patterns: tuple[str, ...]

    def allows(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(fnmatchcase(host, pattern.lower()) for pattern in self.patterns)

    def problem(self, host: str) -> str | None:
        """Why `host` may not be polled, or None when it may."""
        if self.allows(host):
            return None
        allowed = ",".join(self.patterns)
        return f"host {host!r} is not allowed by --allowed-hosts ({allowed})"


def namespace_problem(endpoint_slices: str | None, namespace: str) -> str | None:
    """Why a ScaledObject in `namespace` may not read these EndpointSlices, or None.

    `endpointSlices` may name only the ScaledObject's own namespace: a ScaledObject
    cannot make the scaler poll pods of another team.
    """
    if endpoint_slices is None:
        return None
    asked = endpoint_slices.split("/")[0]
    if asked == namespace:
        return None
    return f"namespace {asked!r} is not the ScaledObject's ({namespace!r})"

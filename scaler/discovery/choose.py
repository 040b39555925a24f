"""Which discovery a target's pods come from: the one place that chooses.

`endpointSlices` targets watch the Kubernetes API, `service` targets ask DNS, and
`endpoints` targets are a fixed list; a target's activators (`activator`,
`activatorEndpoints`) come from EndpointSlices or a fixed list alike. The API client
and the DNS resolver are made on first use: a scaler that never meets such a trigger
needs no cluster and reads no resolv.conf.
"""

from __future__ import annotations

from pathlib import Path

from scaler.discovery.contract import Discovery
from scaler.discovery.dns import DnsDiscovery, Resolver, make_resolver
from scaler.discovery.endpointslices import EndpointSliceDiscovery, KubeApi
from scaler.discovery.static import StaticDiscovery
from scaler.target_key import ActivatorKey, TargetKey


class Discoveries:
    def __init__(
        self,
        *,
        kubeconfig: Path | None,
        dns_server: tuple[str, int] | None,
        dns_timeout_s: float,
    ) -> None:
        self.kube = KubeApi(kubeconfig)  # configured when a trigger first needs it
        self._dns_server = dns_server
        self._dns_timeout_s = dns_timeout_s
        self._resolver: Resolver | None = None

    def for_target(self, target: TargetKey) -> Discovery:
        if target.endpoint_slices is not None:
            namespace, service = target.endpoint_slices.split("/")
            return EndpointSliceDiscovery(namespace, service, target.port, self.kube)
        if target.service is not None:
            return DnsDiscovery(target.service, target.port, self._dns_resolver())
        return StaticDiscovery(target.endpoints)

    def for_activator(self, activator: ActivatorKey) -> Discovery:
        if activator.endpoint_slices is not None:
            namespace, service = activator.endpoint_slices.split("/")
            return EndpointSliceDiscovery(namespace, service, activator.port, self.kube)
        return StaticDiscovery(activator.endpoints)

    def _dns_resolver(self) -> Resolver:
        if self._resolver is None:
            self._resolver = make_resolver(self._dns_server, timeout_s=self._dns_timeout_s)
        return self._resolver

    async def close(self) -> None:
        await self.kube.close()

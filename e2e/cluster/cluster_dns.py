"""A stand-in for cluster DNS: `<service>.<namespace>.svc.cluster.local` from the API.

A headless Service answers with the ready addresses of its EndpointSlices (as CoreDNS
does, so the scaler's headless-Service discovery and KEDA's round-robin over the
scaler's replicas work as in a cluster); a ClusterIP Service answers with its
ClusterIP. Served on 127.0.0.53:53 (UDP and TCP); `/etc/resolv.conf` points there
inside the run's mount namespace (see `e2e.cluster.sandbox`). TTL 5 s, like CoreDNS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer
from kubernetes import client

from e2e.cluster.kube import Json, list_and_watch

DNS_HOST = "127.0.0.53"
ZONE = "svc.cluster.local"
TTL_S = 5
WATCH_TIMEOUT_S = 60

# A Service's ready (address, port) pairs as a client-side balancer reads them, anew
# at each call (see `Records.endpoints`).
Endpoints = Callable[[], Sequence[tuple[str, int]]]


def ready_addresses(slices: Sequence[Mapping[str, Any]]) -> list[str]:
    found: set[str] = set()
    for piece in slices:
        for endpoint in piece.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready"):
                found.update(endpoint.get("addresses") or [])
    return sorted(found)


class Records:
    """Services and EndpointSlices as last seen, and the names they give."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cluster_ips: dict[tuple[str, str], str | None] = {}
        self._slices: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}

    def set_service(self, namespace: str, name: str, cluster_ip: str | None) -> None:
        with self._lock:
            self._cluster_ips[(namespace, name)] = cluster_ip

    def drop_service(self, namespace: str, name: str) -> None:
        with self._lock:
            self._cluster_ips.pop((namespace, name), None)

    def set_slice(self, namespace: str, service: str, name: str, piece: Mapping[str, Any]) -> None:
        with self._lock:
            self._slices.setdefault((namespace, service), {})[name] = piece

    def drop_slice(self, namespace: str, service: str, name: str) -> None:
        with self._lock:
            self._slices.get((namespace, service), {}).pop(name, None)

    def endpoints(self, namespace: str, service: str, port_name: str) -> list[tuple[str, int]]:
        """Ready (address, port) pairs of a Service's EndpointSlices, for a client-side
        balancer (no kube-proxy here)."""
        with self._lock:
            slices = list(self._slices.get((namespace, service), {}).values())
        pairs: set[tuple[str, int]] = set()
        for piece in slices:
            ports = [p["port"] for p in piece.get("ports") or [] if p.get("name") == port_name]
            for address in ready_addresses([piece]):
                pairs.update((address, port) for port in ports)
        return sorted(pairs)

    def lookup(self, qname: str) -> list[str] | None:
        """The A records of a name; None for a name that does not exist."""
        parts = qname.rstrip(".").lower().split(".")
        if len(parts) != 5 or ".".join(parts[2:]) != ZONE:
            return None
        key = (parts[1], parts[0])
        with self._lock:
            if key not in self._cluster_ips:
                return None
            cluster_ip = self._cluster_ips[key]
            if cluster_ip and cluster_ip != "None":
                return [cluster_ip]
            return ready_addresses(list(self._slices.get(key, {}).values()))


class _Resolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, records: Records) -> None:
        self.records = records

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname)
        addresses = self.records.lookup(qname)
        if addresses is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype in (QTYPE.A, QTYPE.ANY):
            for address in addresses:
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(address), ttl=TTL_S))
        return reply


def _follow(
    api: client.ApiClient,
    list_call: Callable[..., Any],
    on_event: Callable[[str, Json], None],
    stopping: threading.Event,
) -> None:
    while not stopping.is_set():
        try:
            for kind, item in list_and_watch(api, list_call, WATCH_TIMEOUT_S):
                on_event(kind, item)
                if stopping.is_set():
                    return
        except Exception:  # the API server restarts or goes away at the end: list again
            stopping.wait(1.0)


class ClusterDns:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.records = Records()
        self.stopping = threading.Event()
        self.core = client.CoreV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.servers = [
            DNSServer(_Resolver(self.records), address=DNS_HOST, port=53, tcp=tcp, logger=_Quiet())
            for tcp in (False, True)
        ]

    def on_service(self, kind: str, service: Json) -> None:
        meta = service["metadata"]
        if kind == "DELETED":
            self.records.drop_service(meta["namespace"], meta["name"])
        else:
            cluster_ip = service["spec"].get("clusterIP")
            self.records.set_service(meta["namespace"], meta["name"], cluster_ip)

    def on_slice(self, kind: str, piece: Json) -> None:
        meta = piece["metadata"]
        service = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if not service:
            return
        if kind == "DELETED":
            self.records.drop_slice(meta["namespace"], service, meta["name"])
        else:
            self.records.set_slice(meta["namespace"], service, meta["name"], piece)

    def start(self) -> ClusterDns:
        for server in self.servers:
            server.start_thread()
        follows = (
            (self.core.list_service_for_all_namespaces, self.on_service),
            (self.discovery.list_endpoint_slice_for_all_namespaces, self.on_slice),
        )
        for list_call, handler in follows:
            threading.Thread(
                target=_follow, args=(self.api, list_call, handler, self.stopping), daemon=True
            ).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for server in self.servers:
            server.stop()


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None

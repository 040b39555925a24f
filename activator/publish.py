"""The one writer of the public Service's EndpointSlice, elected by a Lease.

With the activator on, the public Service (`--public-service`) has no selector: its
traffic goes where one EndpointSlice says. The writer keeps that slice on the ready
rating pods while at least one is ready, and on the ready activators (the pods of
`--activator-service`) while none is. So the activator is in the request path only
while the fleet has no ready pod, and a fleet scaling to zero has its last pod taken
out of the slice as soon as it is terminating, while it still drains.

Every activator runs this; only the holder of the Lease (`--lease`) writes. It renews
the Lease every `RENEW_S`; another takes it over once it has not been renewed for
`LEASE_S`. Every write is a full replace of the slice (`resourceVersion` guarded), so
a writer that lost the Lease meanwhile cannot go back on a newer writer's slice for
longer than one conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scaler.discovery.endpointslices import KubeApi

log = logging.getLogger("activator.publish")
MANAGED_BY = "rating-activator.openclaw.dev"
SERVICE_LABEL = "kubernetes.io/service-name"
LEASE_S = 10  # a holder that has not renewed for this long may be replaced
RENEW_S = 2.0
PORT_NAME = "http"  # the public Service's port name, which kube-proxy matches
Clock = Callable[[], datetime.datetime]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Desired:
    """What the slice should list: the ready rating pods, else the ready activators."""

    rating_pods: tuple[str, ...] = ()
    activators: tuple[str, ...] = ()
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def set_rating_pods(self, pods: Sequence[str]) -> None:
        self.rating_pods = tuple(pods)
        self.changed.set()

    def set_activators(self, pods: Sequence[str]) -> None:
        self.activators = tuple(pods)
        self.changed.set()

    def endpoints(self) -> tuple[str, tuple[str, ...]]:
        """("pods" or "activators", their `host:port` addresses)."""
        if self.rating_pods:
            return "pods", self.rating_pods
        return "activators", self.activators


def slice_body(
    name: str, service: str, addresses: Sequence[str], default_port: int, version: str | None
) -> client.V1EndpointSlice:
    """The EndpointSlice that sends `service`'s traffic to `addresses` (host:port, all on
    one port; `default_port` when there is none)."""
    hosts = sorted({address.rpartition(":")[0].strip("[]") for address in addresses})
    ports = {int(address.rpartition(":")[2]) for address in addresses} or {default_port}
    if len(ports) > 1:
        raise ValueError(f"one slice has one port, and these listen on {sorted(ports)}")
    six = bool(hosts) and all(ipaddress.ip_address(host).version == 6 for host in hosts)
    labels = {SERVICE_LABEL: service, "endpointslice.kubernetes.io/managed-by": MANAGED_BY}
    ready = client.V1EndpointConditions(ready=True, serving=True)
    return client.V1EndpointSlice(
        api_version="discovery.k8s.io/v1",
        kind="EndpointSlice",
        metadata=client.V1ObjectMeta(name=name, labels=labels, resource_version=version),
        address_type="IPv6" if six else "IPv4",
        endpoints=[client.V1Endpoint(addresses=[host], conditions=ready) for host in hosts],
        ports=[client.DiscoveryV1EndpointPort(name=PORT_NAME, port=ports.pop(), protocol="TCP")],
    )


class Lease:
    """Holds (or waits for) one coordination.k8s.io Lease."""

    def __init__(
        self, api: KubeApi, namespace: str, name: str, identity: str, clock: Clock = _now
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self._identity = identity
        self._clock = clock
        self.held = False

    async def try_hold(self) -> bool:
        """Take or renew the Lease if it is ours or free; whether we hold it now."""
        coordination = client.CoordinationV1Api(await self._api.api_client())
        now = self._clock()
        try:
            lease = await coordination.read_namespaced_lease(self._name, self._namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=self._name))
            body.spec = self._spec(now, transitions=0, acquired=now)
            with contextlib.suppress(ApiException):  # another took it first: not ours
                await coordination.create_namespaced_lease(self._namespace, body)
                return self._note(True)
            return self._note(False)
        spec = lease.spec or client.V1LeaseSpec()
        ours = spec.holder_identity == self._identity
        if not ours and not self._expired(spec, now):
            return self._note(False)
        transitions = (spec.lease_transitions or 0) + (0 if ours else 1)
        acquired = spec.acquire_time if ours and spec.acquire_time else now
        lease.spec = self._spec(now, transitions=transitions, acquired=acquired)
        try:  # resourceVersion-guarded: two takers, one wins
            await coordination.replace_namespaced_lease(self._name, self._namespace, lease)
        except ApiException as exc:
            if exc.status != 409:
                raise
            return self._note(False)
        return self._note(True)

    async def release(self) -> None:
        """Give the Lease up (on shutdown) so that another activator takes it at once."""
        if not self.held:
            return
        coordination = client.CoordinationV1Api(await self._api.api_client())
        lease = await coordination.read_namespaced_lease(self._name, self._namespace)
        if lease.spec is not None and lease.spec.holder_identity == self._identity:
            lease.spec.holder_identity = ""  # as client-go releases: free at once
            lease.spec.lease_duration_seconds = 1
            with contextlib.suppress(ApiException):
                await coordination.replace_namespaced_lease(self._name, self._namespace, lease)
        self._note(False)

    def _spec(
        self, now: datetime.datetime, *, transitions: int, acquired: datetime.datetime
    ) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=self._identity,
            lease_duration_seconds=LEASE_S,
            acquire_time=acquired,
            renew_time=now,
            lease_transitions=transitions,
        )

    def _expired(self, spec: client.V1LeaseSpec, now: datetime.datetime) -> bool:
        if not spec.holder_identity or spec.renew_time is None:
            return True
        duration = datetime.timedelta(seconds=spec.lease_duration_seconds or LEASE_S)
        renewed = spec.renew_time
        if renewed.tzinfo is None:
            renewed = renewed.replace(tzinfo=datetime.UTC)
        return bool(renewed + duration < now)

    def _note(self, held: bool) -> bool:
        if held != self.held:
            log.info("Lease %s/%s %s", self._namespace, self._name, "taken" if held else "lost")
        self.held = held
        return held


class SliceWriter:
    """Keeps the public Service's EndpointSlice on `Desired`, while holding the Lease."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        service: str,
        port: int,
        desired: Desired,
        lease: Lease,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._service = service
        self._port = port
        self._desired = desired
        self._lease = lease
        self.name = f"{service}-activator"
        self.written: tuple[str, tuple[str, ...]] | None = None
        self.writes = 0

    async def close(self) -> None:
        """Give up the Lease, so another activator writes at once; close the client."""
        with contextlib.suppress(Exception):  # shutting down: the Lease expires anyway
            await self._lease.release()
        await self._api.close()

    async def run(self) -> None:
        """Renew the Lease and write on every change, until cancelled."""
        while True:
            try:
                if await self._lease.try_hold():
                    await self._write_if_changed()
                else:
                    self.written = None  # write again at once if the Lease comes back
            except Exception as exc:  # the API going away must not end the activator
                log.warning("public EndpointSlice %s/%s: %s", self._namespace, self.name, exc)
            self._desired.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RENEW_S):
                    await self._desired.changed.wait()

    async def _write_if_changed(self) -> None:
        wanted = self._desired.endpoints()
        if wanted == self.written:
            return
        discovery = client.DiscoveryV1Api(await self._api.api_client())
        try:
            current = await discovery.read_namespaced_endpoint_slice(self.name, self._namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            current = None
        version = current.metadata.resource_version if current is not None else None
        body = slice_body(self.name, self._service, wanted[1], self._port, version)
        if current is None:
            await discovery.create_namespaced_endpoint_slice(self._namespace, body)
        else:
            await discovery.replace_namespaced_endpoint_slice(self.name, self._namespace, body)
        self.written = wanted
        self.writes += 1
        kind, addresses = wanted
        log.info(
            "public Service %s now goes to the %s: %d endpoint(s) %s",
            self._service,
            kind,
            len(addresses),
            ",".join(addresses[:10]),
        )

"""The pods of a Service from its EndpointSlices, listed and then watched through the API.

A Service's endpoints are spread over several slices (label
`kubernetes.io/service-name`). Each watch starts from the resourceVersion of the
last list or event; a 410 Gone (history compacted) starts over with a new list. An
endpoint counts while it is `ready` and not `terminating` (a missing condition means
ready and not terminating, as the API documents). Every change of the ready set wakes
the poller, so a new pod gets its first poll right away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException
from kubernetes_asyncio.watch import Watch

from scaler.discovery.contract import DiscoveryError

log = logging.getLogger("scaler.endpointslices")

SERVICE_LABEL = "kubernetes.io/service-name"
WATCH_TIMEOUT_S = 240  # the API server ends each watch after this; it is then resumed
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
FIRST_LIST_WAIT_S = 1.0  # how long the first poll waits for the first list


class KubeApi:
    """One API client for every watch, configured on first use: a process that never
    meets an `endpointSlices` trigger needs no cluster."""

    def __init__(self, kubeconfig: Path | None) -> None:
        self._kubeconfig = kubeconfig
        self._client: client.ApiClient | None = None
        self._lock = asyncio.Lock()

    async def discovery_v1(self) -> client.DiscoveryV1Api:
        return client.DiscoveryV1Api(await self.api_client())

    async def api_client(self) -> client.ApiClient:
        """The one client, configured on first use; raises DiscoveryError without an API."""
        async with self._lock:
            if self._client is None:
                self._client = client.ApiClient(await self._configuration())
        return self._client

    async def _configuration(self) -> client.Configuration:
        configuration = client.Configuration()
        try:
            if self._kubeconfig is not None:
                await config.load_kube_config(
                    config_file=str(self._kubeconfig), client_configuration=configuration
                )
            else:
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
        except (ConfigException, OSError, ValueError) as exc:
            where = f"--kubeconfig {self._kubeconfig}" if self._kubeconfig else "in-cluster"
            raise DiscoveryError(
                f"no Kubernetes API ({where} configuration: {exc}); outside a cluster, "
                "give --kubeconfig"
            ) from None
        return configuration

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def serving_addresses(endpoints: Iterable[Any] | None) -> frozenset[str]:
    """Addresses of the endpoints that are ready and not terminating."""
    found: set[str] = set()
    for endpoint in endpoints or ():
        conditions = endpoint.conditions
        ready = conditions is None or conditions.ready is not False
        terminating = conditions is not None and conditions.terminating is True
        if ready and not terminating:
            found.update(endpoint.addresses or ())
    return frozenset(found)


def union(slices: Mapping[str, frozenset[str]]) -> frozenset[str]:
    return frozenset().union(*slices.values())


class EndpointSliceDiscovery:
    """The ready pods of Service `namespace/service`, kept current by a watch."""

    def __init__(self, namespace: str, service: str, port: int, api: KubeApi) -> None:
        self.name = f"{namespace}/{service}"
        self._namespace, self._service, self._port = namespace, service, port
        self._api = api
        self._slices: dict[str, frozenset[str]] = {}
        self._ready: frozenset[str] = frozenset()
        self._listed = asyncio.Event()
        self._error: str | None = None
        self._failures = 0
        self._on_change: Callable[[], None] = lambda: None
        self._task: asyncio.Task[None] | None = None

    def start(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._task = asyncio.create_task(self._run(), name=f"watch {self.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def addresses(self) -> list[tuple[str, int]]:
        if not self._listed.is_set():
            try:
                async with asyncio.timeout(FIRST_LIST_WAIT_S):
                    await self._listed.wait()
            except TimeoutError:
                why = self._error or "not listed yet"
                raise DiscoveryError(f"EndpointSlices of {self.name}: {why}") from None
        if self._error is not None:
            raise DiscoveryError(f"EndpointSlices of {self.name}: {self._error}")
        return [(address, self._port) for address in sorted(self._ready)]

    async def _run(self) -> None:
        self._failures = 0  # in a row; only a watch that worked resets it, not a list
        while True:
            try:
                version = await self._list()
                self._error = None
                while True:
                    version = await self._watch(version)
                    self._failures = 0
            except ApiException as exc:
                if exc.status == 410:  # the watch fell behind compacted history: list again
                    log.info("EndpointSlices of %s: watch expired (410), listing again", self.name)
                    continue
                self._fail(_describe(exc, self._namespace))
            except (aiohttp.ClientError, OSError, TimeoutError, DiscoveryError) as exc:
                self._fail(str(exc) or type(exc).__name__)
            except Exception as exc:  # the client library raises bare Exception on odd answers
                self._fail(f"{type(exc).__name__}: {str(exc)[:200]}")
            await asyncio.sleep(RETRY_DELAYS_S[min(self._failures, len(RETRY_DELAYS_S) - 1)])
            self._failures += 1

    def _fail(self, error: str) -> None:
        if error != self._error:
            log.warning("EndpointSlices of %s: %s; retrying", self.name, error)
        self._error = error

    async def _list(self) -> str:
        api = await self._api.discovery_v1()
        listed = await api.list_namespaced_endpoint_slice(
            self._namespace,
            label_selector=f"{SERVICE_LABEL}={self._service}",
            _request_timeout=30,
        )
        self._slices = {
            item.metadata.name: serving_addresses(item.endpoints) for item in listed.items
        }
        self._publish()
        self._listed.set()
        return str(listed.metadata.resource_version)

    async def _watch(self, version: str) -> str:
        """Apply events from `version` on until the server ends the watch; the last version."""
        api = await self._api.discovery_v1()
        async with Watch() as watch:
            stream = watch.stream(
                api.list_namespaced_endpoint_slice,
                self._namespace,
                label_selector=f"{SERVICE_LABEL}={self._service}",
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_TIMEOUT_S,
                _request_timeout=WATCH_TIMEOUT_S + 30,
            )
            async for event in stream:
                self._apply(event["type"], event["object"])
                self._failures = 0
            return str(watch.resource_version or version)

    def _apply(self, kind: str, item: Any) -> None:
        if kind == "BOOKMARK":
            return
        name = item.metadata.name
        if kind == "DELETED":
            self._slices.pop(name, None)
        else:  # ADDED, MODIFIED
            self._slices[name] = serving_addresses(item.endpoints)
        self._publish()

    def _publish(self) -> None:
        ready = union(self._slices)
        if ready != self._ready:
            self._ready = ready
            self._on_change()


def _describe(exc: ApiException, namespace: str) -> str:
    if exc.status in (401, 403):
        return (
            f"HTTP {exc.status} {exc.reason}: the scaler's ServiceAccount needs get, list and "
            f"watch on endpointslices (discovery.k8s.io) in namespace {namespace}"
        )
    return f"HTTP {exc.status} {exc.reason}"

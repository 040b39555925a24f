"""A small stand-in for the Kubernetes API: EndpointSlices only, list and watch, over HTTP.

It speaks the wire format the real API server does (lists with a resourceVersion,
watch streams of JSON lines, an ERROR event with code 410 for a version older than
the compacted history, Status bodies for 403), so that the scaler's discovery is
driven through its real client library. The real API server is used too, where its
binaries are built (test_endpointslices_apiserver.py); this one makes the rare cases
(410, 403, a server that goes away) easy to cause.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

SLICES_PATH = "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
SERVICE_LABEL = "kubernetes.io/service-name"


def endpoint(address: str, *, ready: bool = True, terminating: bool = False) -> dict[str, Any]:
    return {
        "addresses": [address],
        "conditions": {"ready": ready, "serving": ready or terminating, "terminating": terminating},
    }


def endpoint_slice(
    name: str, service: str, endpoints: list[dict[str, Any]], port: int = 9090
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {SERVICE_LABEL: service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "admin", "port": port, "protocol": "TCP"}],
    }


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@dataclass
class FakeKubeApi:
    namespace: str = "edge"
    forbidden: bool = False
    port: int = 0
    lists: int = 0  # list calls answered, for tests of re-listing
    _version: int = 100
    _slices: dict[str, dict[str, Any]] = field(default_factory=dict)
    _history: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    _compacted: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None
    _epoch: int = 0

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get(SLICES_PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self.end_watches()  # or the server's shutdown waits for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def kubeconfig(self, directory: Path) -> Path:
        path = directory / "kubeconfig"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "scaler", "user": {"token": "test-token"}}],
                    "contexts": [
                        {"name": "fake", "context": {"cluster": "fake", "user": "scaler"}}
                    ],
                }
            )
        )
        return path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def put(self, item: dict[str, Any]) -> None:
        """Create or replace a slice (ADDED or MODIFIED to every watch)."""
        name = item["metadata"]["name"]
        kind = "MODIFIED" if name in self._slices else "ADDED"
        await self._record(kind, item)
        self._slices[name] = item

    async def delete(self, name: str) -> None:
        await self._record("DELETED", self._slices.pop(name))

    async def compact(self) -> None:
        """Forget the history so far: a watch from any version seen until now gets 410."""
        self._compacted = self._version + 1
        self._history.clear()

    async def end_watches(self) -> None:
        """What the server does at a watch's timeoutSeconds: end each stream cleanly."""
        async with self._changed:
            self._epoch += 1
            self._changed.notify_all()

    async def _record(self, kind: str, item: dict[str, Any]) -> None:
        async with self._changed:
            self._version += 1
            item["metadata"]["namespace"] = self.namespace
            item["metadata"]["resourceVersion"] = str(self._version)
            self._history.append((self._version, kind, json.loads(json.dumps(item))))
            self._changed.notify_all()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.forbidden:
            body = _status(403, "Forbidden", "endpointslices.discovery.k8s.io is forbidden")
            return web.json_response(body, status=403)
        if request.match_info["namespace"] != self.namespace:
            return web.json_response({"kind": "EndpointSliceList", "items": [], "metadata": {}})
        wanted = request.query.get("labelSelector", "")
        if request.query.get("watch", "").lower() in ("true", "1"):
            return await self._watch(request, wanted)
        self.lists += 1
        return web.json_response(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSliceList",
                "metadata": {"resourceVersion": str(self._version)},
                "items": [item for item in self._slices.values() if _matches(item, wanted)],
            }
        )

    async def _wait_past(self, version: int, epoch: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._version > version or self._epoch != epoch)

    async def _watch(self, request: web.Request, wanted: str) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or self._version)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        if since < self._compacted:
            status = _status(410, "Expired", f"too old resource version: {since}")
            await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
            return response
        epoch = self._epoch
        try:
            while self._epoch == epoch:
                for version, kind, item in list(self._history):
                    if version > since and _matches(item, wanted):
                        line = json.dumps({"type": kind, "object": item}).encode() + b"\n"
                        await response.write(line)
                    since = max(since, version)
                await self._wait_past(since, epoch)
        except ConnectionResetError:
            pass
        await response.write_eof()
        return response


def _matches(item: dict[str, Any], selector: str) -> bool:
    if not selector:
        return True
    key, _, value = selector.partition("=")
    return bool(item["metadata"].get("labels", {}).get(key) == value)

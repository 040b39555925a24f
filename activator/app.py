"""The activator's two ASGI apps: the public port (hold, then forward) and the admin port.

Public: every method and path of rating-api's public port. The body is read first
(at most `--max-body-bytes`); then the request goes to a ready pod at once, or waits
for one in arrival order (`hold.Holds`). A pod that refuses the connection got
nothing, so the next ready pod is tried, and while none takes it the request keeps
waiting, every `RETRY_S`, until its hold time is up. The pod's answer comes back
unchanged; a pod that fails mid-request gives `502`, one that is too slow `504`, both
problem+json. A client that leaves while held is dropped from the queue.

Admin: `/metrics`, `/healthz`, `/readyz`, and `/v1/held`, what the scaler reads: the
queue now; with `?version=V&wait=S` it answers once the queue has turned from empty
to held or back since version V, or after S seconds (at most `MAX_WAIT_S`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from activator.config import ActivatorConfig
from activator.forward import Answer, Forwarder, PodFailed, PodUnreachable, Request
from activator.hold import Full, Holds, TimedOut
from activator.metrics import ActivatorMetrics
from api.problems import BODY_TOO_LARGE, ProblemType, send_problem
from scaler.held_state import SCHEMA

log = logging.getLogger("activator")
RETRY_S = 0.2  # how often a request retries while every ready pod refuses it
MAX_WAIT_S = 30.0
JSON = "application/json"

HOLD_TIMEOUT = ProblemType.ours("hold-timeout", "No rating pod became ready in time", 503)
HELD_FULL = ProblemType.ours("held-full", "The activator holds as many requests as it may", 503)
POD_FAILED = ProblemType.ours("pod-failed", "The rating pod failed to answer", 502)
POD_TIMEOUT = ProblemType.ours("pod-timeout", "The rating pod did not answer in time", 504)


@dataclass
class Activator:
    """The activator's state, shared by both apps."""

    config: ActivatorConfig
    holds: Holds
    forwarder: Forwarder
    metrics: ActivatorMetrics
    boot_id: str
    started_s: float = field(default_factory=time.monotonic)
    draining: bool = False
    held_bytes: int = 0  # the bodies of the requests held now


class PublicApp:
    def __init__(self, activator: Activator) -> None:
        self._activator = activator
        self._config = activator.config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive, self._config.max_body_bytes)
        if body is None:
            detail = f"the body is larger than {self._config.max_body_bytes} bytes"
            await send_problem(send, BODY_TOO_LARGE, detail, [(b"connection", b"close")])
            return
        target = scope["raw_path"].decode("latin-1") or scope["path"]
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        request = Request(scope["method"], target, list(scope["headers"]), body)
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await self._answer(request, send, gone)
        finally:
            gone.cancel()

    async def _answer(self, request: Request, send: Send, gone: asyncio.Future[None]) -> None:
        activator = self._activator
        deadline = time.monotonic() + self._config.hold_timeout_s
        pod = activator.holds.ready_pod()
        held = pod is None
        tried: set[str] = set()
        while True:
            if pod is None:
                pod = await self._hold(deadline, send, gone, len(request.body))
                if pod is None:
                    return  # answered 503, or the client left
            try:
                answer = await activator.forwarder.forward(pod, request)
            except PodUnreachable as exc:
                activator.metrics.pod_errors.labels("unreachable").inc()
                log.info("pod unreachable, trying another: %s", exc)
                tried.add(pod)
                pod = await self._another(tried, deadline)
                continue
            except PodFailed as exc:
                kind, problem = (
                    ("timeout", POD_TIMEOUT) if exc.timed_out else ("failed", POD_FAILED)
                )
                activator.metrics.pod_errors.labels(kind).inc()
                await send_problem(send, problem, str(exc))
                return
            activator.metrics.forwarded.labels("true" if held else "false").inc()
            await _send_answer(send, answer)
            return

    async def _hold(
        self, deadline: float, send: Send, gone: asyncio.Future[None], size: int
    ) -> str | None:
        """Wait for a ready pod; None once the 503 is sent or the client has left."""
        activator, started = self._activator, time.monotonic()
        if activator.held_bytes + size > self._config.max_held_bytes:
            activator.metrics.refused_full.inc()
            detail = (
                f"the held requests' bodies reach --max-held-bytes ({self._config.max_held_bytes})"
            )
            await self._unavailable(send, HELD_FULL, detail)
            return None
        activator.held_bytes += size
        try:
            return await self._wait(started, deadline, send, gone)
        finally:
            activator.held_bytes -= size

    async def _wait(
        self, started: float, deadline: float, send: Send, gone: asyncio.Future[None]
    ) -> str | None:
        activator = self._activator
        waiting = asyncio.ensure_future(activator.holds.wait_for_pod(max(0.0, deadline - started)))
        either: list[asyncio.Future[Any]] = [waiting, gone]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            waiting.cancel()  # the client left: it no longer counts as held
            await asyncio.gather(waiting, return_exceptions=True)
            return None
        try:
            pod = waiting.result()
        except Full:
            activator.metrics.refused_full.inc()
            await self._unavailable(send, HELD_FULL, "the queue is full; try again shortly")
            return None
        except TimedOut:
            activator.metrics.timed_out.inc()
            activator.metrics.hold_seconds.observe(time.monotonic() - started)
            detail = f"no rating pod was ready within {self._config.hold_timeout_s:g} s"
            await self._unavailable(send, HOLD_TIMEOUT, detail)
            return None
        activator.metrics.held.inc()
        activator.metrics.hold_seconds.observe(time.monotonic() - started)
        return pod

    async def _another(self, tried: set[str], deadline: float) -> str | None:
        """A ready pod not tried yet; once every one refused, the same again after a
        pause. None: wait in the queue (or time out there)."""
        untried = [pod for pod in self._activator.holds.pods if pod not in tried]
        if untried:
            return untried[0]
        tried.clear()
        await asyncio.sleep(min(RETRY_S, max(0.0, deadline - time.monotonic())))
        return self._activator.holds.ready_pod() if time.monotonic() < deadline else None

    async def _unavailable(self, send: Send, problem: ProblemType, detail: str) -> None:
        retry_after = str(max(1, math.ceil(RETRY_S * 5))).encode()
        await send_problem(send, problem, detail, [(b"retry-after", retry_after)])


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client left; what it sent is all there is
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_answer(send: Send, answer: Answer) -> None:
    headers = [*answer.headers, (b"content-length", b"%d" % len(answer.body))]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def admin_app(activator: Activator) -> Starlette:
    async def metrics(_: StarletteRequest) -> Response:
        body = generate_latest(activator.metrics.registry)
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: StarletteRequest) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def readyz(_: StarletteRequest) -> Response:
        if activator.draining:
            return Response(b'{"status":"draining"}', status_code=503, media_type=JSON)
        return Response(b'{"status":"ready"}', media_type=JSON)

    async def held(request: StarletteRequest) -> Response:
        version, wait_s = _long_poll(request)
        if version is not None and wait_s > 0:
            await activator.holds.wait_change(version, wait_s)
        return Response(orjson.dumps(held_document(activator)), media_type=JSON)

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/v1/held", held),
        ]
    )


def held_document(activator: Activator) -> dict[str, object]:
    state = activator.holds.state()
    return {
        "schema": SCHEMA,
        "activator": activator.config.pod_name,
        "boot_id": activator.boot_id,
        "uptime_s": time.monotonic() - activator.started_s,
        "held": state.held,
        "oldest_held_s": state.oldest_held_s,
        "held_total": state.held_total,
        "timed_out_total": state.timed_out_total,
        "refused_full_total": state.refused_full_total,
        "pods_ready": state.pods_ready,
        "version": state.version,
    }


def _long_poll(request: StarletteRequest) -> tuple[int | None, float]:
    """`version` and `wait` from the query; anything unreadable means no wait."""
    raw_version, raw_wait = request.query_params.get("version"), request.query_params.get("wait")
    if not raw_version or not raw_version.isascii() or not raw_version.isdigit():
        return None, 0.0
    try:
        wait_s = float(raw_wait) if raw_wait and raw_wait.isascii() else 0.0
    except ValueError:
        return None, 0.0
    if not math.isfinite(wait_s):
        return None, 0.0
    return int(raw_version), min(max(wait_s, 0.0), MAX_WAIT_S)

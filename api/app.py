"""The two apps of one pod: the public API and the admin port.

Handlers are thin: the bucket decides, `api.batch` validates and rates, and this module
turns their outcome into HTTP. A 429 is decided before the body is read, so a refused
request does no work.

`POST /v1/rate` takes a fast path past Starlette's middleware and router, which cost
about as much per request as validating and rating a small batch (measured by
bench/api_throughput.py and docs/BENCHMARKS.md); the probes, the OpenAPI document, 404
and 405 stay with Starlette.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, ExceptionHandler, Receive, Scope, Send

from api import bucket_schema
from api.auth import BearerAuth
from api.batch import InvalidInput, rate_payload
from api.bucket import Clock, TokenBucket
from api.config import ApiConfig
from api.headers import policy_value, ratelimit_value, seconds_until_token
from api.metrics import RatingMetrics
from api.middleware import RequestMetrics
from api.openapi import openapi_document
from api.problems import (
    BATCH_TOO_LARGE,
    BODY_TOO_LARGE,
    INTERNAL_ERROR,
    INVALID_VALUE,
    MALFORMED_JSON,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PROBLEM_MEDIA_TYPE,
    RATE_LIMITED,
    UNSUPPORTED_MEDIA_TYPE,
    ProblemError,
    ProblemType,
    problem_body,
    problem_response,
)
from common.token_file import TokenFile

logger = logging.getLogger(__name__)

JSON_MEDIA_TYPE = "application/json"
JSON_CONTENT_TYPE = JSON_MEDIA_TYPE.encode()
PROBLEM_CONTENT_TYPE = PROBLEM_MEDIA_TYPE.encode()


@dataclass
class Service:
    """What both ports share: one bucket, its metrics, and whether the pod is draining."""

    config: ApiConfig
    bucket: TokenBucket
    metrics: RatingMetrics
    started_s: float
    """When the process started, on the bucket's clock: `uptime_s` counts from here."""
    boot_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    draining: bool = False

    @classmethod
    def create(cls, config: ApiConfig, clock: Clock = time.monotonic) -> Service:
        bucket = TokenBucket(config.bucket_capacity, config.bucket_rate, clock)
        return cls(config, bucket, RatingMetrics(bucket), started_s=clock())


class RateEndpoint:
    """`POST /v1/rate` as a plain ASGI app: raw messages in, raw messages out.

    It answers every outcome itself, a bug included (500 problem, logged), because the
    fast path runs it without Starlette's error middleware.
    """

    def __init__(self, service: Service) -> None:
        config = service.config
        self._bucket = service.bucket
        self._refill_per_s = config.bucket_rate
        self._policy = (
            b"ratelimit-policy",
            policy_value(config.bucket_capacity, config.bucket_rate).encode(),
        )
        self._max_batch = config.max_batch
        self._max_body_bytes = config.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bucket = self._bucket
        if not bucket.try_acquire():
            await self._send_rate_limited(send, bucket.tokens_left)
            return
        ratelimit = ratelimit_value(bucket.tokens_left, self._refill_per_s)
        headers = [self._policy, (b"ratelimit", ratelimit)]
        try:
            self._check_content_headers(scope)
            # A body that does not arrive in time gets its 408 from api.protocol.
            body = await _receive_body(receive, self._max_body_bytes)
            document = rate_payload(orjson.loads(body), self._max_batch)
        except orjson.JSONDecodeError as exc:
            problem = problem_body(MALFORMED_JSON, f"the body is not valid JSON: {exc}")
            await _send(send, 400, PROBLEM_CONTENT_TYPE, problem, headers)
        except InvalidInput as exc:
            kind = BATCH_TOO_LARGE if exc.status == 413 else INVALID_VALUE
            problem = problem_body(kind, str(exc), exc.pointer)
            await _send(send, kind.status, PROBLEM_CONTENT_TYPE, problem, headers)
        except ProblemError as exc:
            if exc.problem is BODY_TOO_LARGE:
                headers.append((b"connection", b"close"))  # do not read the rest
            problem = problem_body(exc.problem, exc.detail)
            await _send(send, exc.problem.status, PROBLEM_CONTENT_TYPE, problem, headers)
        except ClientDisconnect:
            return  # nobody left to answer
        except Exception:
            logger.exception("POST /v1/rate failed")
            problem = problem_body(INTERNAL_ERROR, "the server failed to answer; see its log")
            await _send(send, 500, PROBLEM_CONTENT_TYPE, problem, headers)
        else:
            await _send(send, 200, JSON_CONTENT_TYPE, orjson.dumps(document), headers)

    async def _send_rate_limited(self, send: Send, tokens: float) -> None:
        retry_after_s = seconds_until_token(tokens, self._refill_per_s)
        headers = [
            (b"retry-after", str(retry_after_s).encode()),
            self._policy,
            (b"ratelimit", ratelimit_value(tokens, self._refill_per_s)),
        ]
        detail = f"the token bucket is empty; a token is due in {retry_after_s} s"
        await _send(send, 429, PROBLEM_CONTENT_TYPE, problem_body(RATE_LIMITED, detail), headers)

    def _check_content_headers(self, scope: Scope) -> None:
        content_type, content_length = _content_headers(scope)
        if not _is_json(content_type):
            shown = content_type.decode("latin-1") or "none"
            detail = f"Content-Type must be application/json, got {shown}"
            raise ProblemError(UNSUPPORTED_MEDIA_TYPE, detail)
        limit = self._max_body_bytes
        if content_length is not None and content_length > limit:
            detail = f"the body has {content_length} bytes, the limit is {limit}"
            raise ProblemError(BODY_TOO_LARGE, detail)


class PublicEndpoints:
    """The probes and the OpenAPI document."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._openapi = b""  # built when first asked for, not at start-up

    async def healthz(self, request: Request) -> Response:
        return await alive(request)

    async def readyz(self, request: Request) -> Response:
        if self._service.draining:
            body = b'{"status":"draining"}'
            return Response(body, status_code=503, media_type=JSON_MEDIA_TYPE)
        return Response(b'{"status":"ready"}', media_type=JSON_MEDIA_TYPE)

    async def openapi(self, request: Request) -> Response:
        if not self._openapi:
            self._openapi = orjson.dumps(openapi_document(self._service.config))
        return Response(self._openapi, media_type=JSON_MEDIA_TYPE)


async def alive(request: Request) -> Response:
    """`GET /healthz` on both ports: the process is up. Liveness probes ask the admin
    port's, which public load cannot fill: at `--max-connections` the public port
    answers everything with 503, and a probe there would restart a busy, healthy pod."""
    return Response(b'{"status":"ok"}', media_type=JSON_MEDIA_TYPE)


class AdminEndpoints:
    """`GET /metrics` for Prometheus and `GET /v1/bucket` for the scaler."""

    def __init__(self, service: Service) -> None:
        self._service = service

    async def metrics(self, request: Request) -> Response:
        body, content_type = self._service.metrics.expose(request.headers.get("accept", ""))
        return Response(body, headers={"Content-Type": content_type})

    async def bucket(self, request: Request) -> Response:
        service = self._service
        state = service.bucket.state()
        document = {
            "schema": bucket_schema.SCHEMA,
            "pod": service.config.pod_name,
            "boot_id": service.boot_id,
            "uptime_s": state.now_s - service.started_s,
            "capacity": state.capacity,
            "refill_per_s": state.refill_per_s,
            "tokens": state.tokens,
            "granted_total": state.granted_total,
            "denied_total": state.denied_total,
        }
        return Response(
            orjson.dumps(document),
            media_type=JSON_MEDIA_TYPE,
            headers={"Cache-Control": "no-store"},
        )


class FastPath:
    """Hands one method and path straight to `endpoint`, everything else to `fallback`."""

    def __init__(self, endpoint: ASGIApp, fallback: ASGIApp, method: str, path: str) -> None:
        self.endpoint = endpoint
        self.fallback = fallback
        self.method = method
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == self.path
            and scope["method"] == self.method
        ):
            await self.endpoint(scope, receive, send)
        else:
            await self.fallback(scope, receive, send)


def public_app(service: Service) -> ASGIApp:
    rate = RateEndpoint(service)
    endpoints = PublicEndpoints(service)
    starlette = Starlette(
        routes=[
            Route("/v1/rate", rate, methods=["POST"]),  # reached only for 405s
            Route("/healthz", endpoints.healthz, methods=["GET"]),
            Route("/readyz", endpoints.readyz, methods=["GET"]),
            Route("/openapi.json", endpoints.openapi, methods=["GET"]),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    starlette.router.redirect_slashes = False  # a 307 to "/v1/rate" would not be a problem+json
    return RequestMetrics(FastPath(rate, starlette, "POST", "/v1/rate"), service.metrics)


def admin_app(service: Service) -> ASGIApp:
    """`/metrics` and `/healthz` stay open to Prometheus and kubelet; `/v1/bucket` needs
    the token if one is set."""
    endpoints = AdminEndpoints(service)
    starlette = Starlette(
        routes=[
            Route("/metrics", endpoints.metrics, methods=["GET"]),
            Route("/v1/bucket", endpoints.bucket, methods=["GET"]),
            Route("/healthz", alive, methods=["GET"]),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    starlette.router.redirect_slashes = False
    if not service.config.admin_token_file:
        return starlette
    token_file = TokenFile(service.config.admin_token_file)
    return BearerAuth(starlette, token_file, frozenset({"/v1/bucket"}))


async def _receive_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, or `BODY_TOO_LARGE` as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ProblemError(BODY_TOO_LARGE, f"the body is over the limit of {limit} bytes")
        if not message.get("more_body", False):
            return b"".join((*chunks, chunk)) if chunks else chunk
        chunks.append(chunk)


async def _send(
    send: Send, status: int, content_type: bytes, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """Answer in two ASGI messages; `headers`, a list made for this response, gets appended to."""
    headers.append((b"content-type", content_type))
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _content_headers(scope: Scope) -> tuple[bytes, int | None]:
    """Content-Type and Content-Length, read from the raw headers without building a Headers."""
    content_type = b""
    content_length = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length" and value.isdigit():
            content_length = int(value)
    return content_type, content_length


def _is_json(content_type: bytes) -> bool:
    if content_type == b"application/json":
        return True
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return problem_response(NOT_FOUND, f"nothing at {request.url.path} on this port")
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
        return problem_response(METHOD_NOT_ALLOWED, detail, headers=exc.headers)
    return problem_response(
        ProblemType.plain(exc.status_code), str(exc.detail), headers=exc.headers
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    return problem_response(INTERNAL_ERROR, "the server failed to answer; see its log")


EXCEPTION_HANDLERS: dict[object, ExceptionHandler] = {
    HTTPException: _http_error,
    Exception: _internal_error,
}

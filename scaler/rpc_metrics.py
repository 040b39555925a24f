"""Counting and timing the ExternalScaler RPCs by method and final gRPC status."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar

import grpc
from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class Instrumented(Protocol):
    """A servicer whose `rpc_metrics` the decorators below write to."""

    rpc_metrics: RpcMetrics


Self = TypeVar("Self", bound=Instrumented)
Request = TypeVar("Request")
Response = TypeVar("Response")
Handler = Callable[[Self, Request, "Context"], Awaitable[Response]]


class RpcMetrics:
    """The two RPC series of `ScalerMetrics`: calls by method and code, and their time."""

    def __init__(self, calls: Counter, duration: Histogram) -> None:
        self.calls = calls
        self.duration = duration

    def count(self, method: str, context: Context, error: BaseException | None) -> None:
        self.calls.labels(method, code_name(context, error)).inc()

    def observe(self, method: str, seconds: float) -> None:
        self.duration.labels(method).observe(seconds)


def code_name(context: Context, error: BaseException | None) -> str:
    """The status the client gets: the one set by abort(), else what gRPC makes of `error`."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if code is not None:
        return str(code)
    if error is None:
        return "OK"
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    return "UNKNOWN"  # grpc.aio answers an unexpected exception with UNKNOWN


def observed(
    method: str,
) -> Callable[[Handler[Self, Request, Response]], Handler[Self, Request, Response]]:
    """Count and time a unary RPC by its final status code."""

    def decorate(handler: Handler[Self, Request, Response]) -> Handler[Self, Request, Response]:
        @functools.wraps(handler)
        async def wrapper(self: Self, request: Request, context: Context) -> Response:
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                return await handler(self, request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self.rpc_metrics.count(method, context, error)
                self.rpc_metrics.observe(method, time.perf_counter() - started)

        return wrapper

    return decorate


async def counted_open(
    metrics: RpcMetrics, method: str, context: Context, opening: Awaitable[Response]
) -> Response:
    """Await a stream's opening step; a stream is counted when opened, by how that went."""
    error: BaseException | None = None
    try:
        return await opening
    except BaseException as exc:
        error = exc
        raise
    finally:
        metrics.count(method, context, error)

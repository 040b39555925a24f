"""Error responses as RFC 9457 problem details (`application/problem+json`).

Each problem type is a tag URI (RFC 4151): RFC 9457 recommends one when the type is an
identifier, not a page to fetch. The OpenAPI document lists them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

import orjson
from starlette.responses import Response
from starlette.types import Send

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "tag:openclaw-rating-edge,2026:problem:"


@dataclass(frozen=True, slots=True)
class ProblemType:
    """A kind of problem: its URI, a fixed title and the HTTP status it comes with."""

    uri: str
    title: str
    status: int

    @classmethod
    def ours(cls, slug: str, title: str, status: int) -> ProblemType:
        return cls(_TYPE_PREFIX + slug, title, status)

    @classmethod
    def plain(cls, status: int) -> ProblemType:
        """A problem with nothing to add to its HTTP status (RFC 9457, section 4.2.1)."""
        return cls("about:blank", HTTPStatus(status).phrase, status)


class ProblemError(Exception):
    """Raised by a handler to answer with a problem; `pointer` names a field of the body."""

    def __init__(self, problem: ProblemType, detail: str, pointer: str | None = None) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail
        self.pointer = pointer


MALFORMED_JSON = ProblemType.ours("malformed-json", "The body is not valid JSON", 400)
MALFORMED_REQUEST = ProblemType.ours("malformed-request", "The request is not valid HTTP/1.1", 400)
BODY_TOO_LARGE = ProblemType.ours("body-too-large", "The body is larger than the limit", 413)
BATCH_TOO_LARGE = ProblemType.ours(
    "batch-too-large", "The batch holds more items than the limit", 413
)
UNSUPPORTED_MEDIA_TYPE = ProblemType.ours(
    "unsupported-media-type", "The body must be application/json", 415
)
INVALID_VALUE = ProblemType.ours(
    "invalid-value", "A field has a value outside what it accepts", 422
)
RATE_LIMITED = ProblemType.ours("rate-limited", "The token bucket is empty", 429)
NOT_FOUND = ProblemType.ours("not-found", "No such resource", 404)
METHOD_NOT_ALLOWED = ProblemType.ours("method-not-allowed", "The method is not allowed here", 405)
INTERNAL_ERROR = ProblemType.ours("internal-error", "The server failed; this is a bug", 500)
UNAUTHORIZED = ProblemType.ours("unauthorized", "A valid bearer token is required", 401)
REQUEST_TIMEOUT = ProblemType.ours(
    "request-timeout", "The request did not arrive within the time limit", 408
)
HEADERS_TOO_LARGE = ProblemType.ours(
    "headers-too-large", "The request line and headers are larger than the limit", 431
)
OVERLOADED = ProblemType.ours(
    "overloaded", "The server holds as many connections as it accepts", 503
)

ALL_TYPES = (
    MALFORMED_JSON,
    MALFORMED_REQUEST,
    BODY_TOO_LARGE,
    BATCH_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    INVALID_VALUE,
    RATE_LIMITED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    INTERNAL_ERROR,
    UNAUTHORIZED,
    REQUEST_TIMEOUT,
    HEADERS_TOO_LARGE,
    OVERLOADED,
)


def problem_body(problem: ProblemType, detail: str, pointer: str | None = None) -> bytes:
    """The problem+json document; `pointer` names the offending field of the body (RFC 6901)."""
    body: dict[str, object] = {
        "type": problem.uri,
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
    }
    if pointer is not None:
        # The `errors` member follows the example extension of RFC 9457, section 3.
        body["errors"] = [{"pointer": pointer, "detail": detail}]
    return orjson.dumps(body)


async def send_problem(
    send: Send, problem: ProblemType, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer a problem over raw ASGI, for code that runs outside Starlette's responses."""
    body = problem_body(problem, detail)
    start_headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", b"%d" % len(body)),
        *headers,
    ]
    await send({"type": "http.response.start", "status": problem.status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


def problem_response(
    problem: ProblemType, detail: str, *, headers: Mapping[str, str] | None = None
) -> Response:
    """A problem as a Starlette response, for the exception handlers."""
    return Response(
        problem_body(problem, detail),
        status_code=problem.status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )

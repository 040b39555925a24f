"""`api.app` driven in-process through ASGI calls: the paths a live server rarely shows."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
import pytest
from starlette.types import ASGIApp, Message

from api import app as app_module
from api.app import Service, public_app
from api.config import ApiConfig

BODY = orjson.dumps({"items": [{"id": "a", "up": 1, "down": 1}]})


@pytest.fixture
def service() -> Service:
    return Service.create(ApiConfig(pod_name="test-pod"))


async def call(app: ASGIApp, method: str, path: str, messages: Sequence[Message]) -> list[Message]:
    """Run one request; `messages` are what the client sends, in order."""
    inbox = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    return sent


def status_of(sent: list[Message]) -> int:
    return int(sent[0]["status"])


def whole_body(body: bytes) -> list[Message]:
    return [{"type": "http.request", "body": body, "more_body": False}]


async def test_a_bug_in_the_rating_answers_a_logged_500_problem(
    service: Service, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(payload: object, max_batch: int) -> object:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(app_module, "rate_payload", broken)
    with caplog.at_level(logging.ERROR):
        sent = await call(public_app(service), "POST", "/v1/rate", whole_body(BODY))
    assert status_of(sent) == 500
    assert dict(sent[0]["headers"])[b"content-type"] == b"application/problem+json"
    assert orjson.loads(sent[1]["body"])["status"] == 500
    assert "POST /v1/rate failed" in caplog.text
    assert (
        service.metrics.registry.get_sample_value(
            "openclaw_rating_api_requests_total", {"code": "500"}
        )
        == 1
    )


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/v1/rate", 200), ("GET", "/v1/rate", 405), ("POST", "/v1/ratings", 404)],
    ids=["fast-path", "other-method-to-starlette", "other-path-to-starlette"],
)
async def test_only_post_v1_rate_takes_the_fast_path(
    service: Service, method: str, path: str, status: int
) -> None:
    sent = await call(public_app(service), method, path, whole_body(BODY))
    assert status_of(sent) == status


async def test_a_client_that_leaves_mid_body_gets_nothing_and_is_not_counted(
    service: Service,
) -> None:
    half = [{"type": "http.request", "body": BODY[:5], "more_body": True}]
    sent = await call(public_app(service), "POST", "/v1/rate", half)
    assert sent == []
    registry = service.metrics.registry
    assert registry.get_sample_value("openclaw_rating_api_request_duration_seconds_count") == 0
    assert service.bucket.granted_total == 1  # the token was spent on arrival

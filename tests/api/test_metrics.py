"""Metrics read from our own registry, with a fake clock and fake ASGI apps."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.bucket import TokenBucket
from api.metrics import RatingMetrics
from api.middleware import RequestMetrics
from tests.api.test_bucket import FakeClock

REQUESTS = "openclaw_rating_api_requests_total"
DURATION = "openclaw_rating_api_request_duration_seconds"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics(clock: FakeClock) -> RatingMetrics:
    return RatingMetrics(TokenBucket(capacity=10, refill_per_s=2, clock=clock))


def test_200_and_429_exist_at_zero_before_any_request(metrics: RatingMetrics) -> None:
    assert metrics.registry.get_sample_value(REQUESTS, {"code": "200"}) == 0
    assert metrics.registry.get_sample_value(REQUESTS, {"code": "429"}) == 0
    assert metrics.registry.get_sample_value(REQUESTS, {"code": "404"}) is None


def test_observe_counts_by_code_and_fills_the_histogram(metrics: RatingMetrics) -> None:
    for status, duration_s in [(200, 0.0004), (200, 0.0005), (429, 0.0001), (422, 3.0)]:
        metrics.observe(status, duration_s)
    value = metrics.registry.get_sample_value
    assert [value(REQUESTS, {"code": code}) for code in ("200", "422", "429")] == [2, 1, 1]
    assert value(f"{DURATION}_bucket", {"le": "0.0005"}) == 3  # le is inclusive
    assert value(f"{DURATION}_bucket", {"le": "2.5"}) == 3
    assert value(f"{DURATION}_bucket", {"le": "+Inf"}) == 4
    assert value(f"{DURATION}_count") == 4
    assert value(f"{DURATION}_sum") == pytest.approx(3.001)


@pytest.mark.parametrize("status", [600, 999, 1000, 70000, 99, -1], ids=str)
def test_a_status_outside_http_is_counted_not_raised(metrics: RatingMetrics, status: int) -> None:
    metrics.observe(status, 0.001)
    metrics.observe(status, 0.001)
    assert metrics.registry.get_sample_value(REQUESTS, {"code": str(status)}) == 2
    assert metrics.registry.get_sample_value(f"{DURATION}_count") == 2
    assert metrics.registry.get_sample_value(REQUESTS, {"code": "599"}) is None


def test_fill_is_read_at_scrape_time(clock: FakeClock) -> None:
    fill = "openclaw_rating_api_token_bucket_fill"
    bucket = TokenBucket(capacity=10, refill_per_s=2, clock=clock)
    metrics = RatingMetrics(bucket)
    while bucket.try_acquire():
        pass
    assert metrics.registry.get_sample_value(fill) == 0
    clock.advance(1.5)  # no request in between: only the scrape sees the refill
    assert metrics.registry.get_sample_value(fill) == 3.0
    assert metrics.registry.get_sample_value("openclaw_rating_api_token_bucket_capacity") == 10
    assert metrics.registry.get_sample_value("openclaw_rating_api_token_bucket_refill_rate") == 2
    assert metrics.registry.get_sample_value("openclaw_rating_api_token_bucket_granted_total") == 10
    assert metrics.registry.get_sample_value("openclaw_rating_api_token_bucket_denied_total") == 1


def test_the_exposition_has_every_design_metric(metrics: RatingMetrics) -> None:
    text = generate_latest(metrics.registry).decode()
    for name in [
        "# TYPE openclaw_rating_api_token_bucket_fill gauge",
        "# TYPE openclaw_rating_api_token_bucket_capacity gauge",
        "# TYPE openclaw_rating_api_token_bucket_refill_rate gauge",
        "# TYPE openclaw_rating_api_requests_total counter",
        "# TYPE openclaw_rating_api_request_duration_seconds histogram",
    ]:
        assert name in text


def answering(status: int) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def call(app: ASGIApp, path: str = "/v1/rate") -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "path": path}, receive, send)
    return sent


async def test_middleware_counts_what_the_app_answered(metrics: RatingMetrics) -> None:
    sent = await call(RequestMetrics(answering(415), metrics))
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert metrics.registry.get_sample_value(REQUESTS, {"code": "415"}) == 1
    assert metrics.registry.get_sample_value(f"{DURATION}_count") == 1


async def test_middleware_skips_probes(metrics: RatingMetrics) -> None:
    await call(RequestMetrics(answering(200), metrics), "/readyz")
    assert metrics.registry.get_sample_value(f"{DURATION}_count") == 0


async def test_middleware_counts_a_crash_as_the_500_it_becomes(metrics: RatingMetrics) -> None:
    async def crashing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await call(RequestMetrics(crashing, metrics))
    assert metrics.registry.get_sample_value(REQUESTS, {"code": "500"}) == 1


async def test_middleware_does_not_count_a_request_nobody_answered(metrics: RatingMetrics) -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return None  # the client went away before an answer

    await call(RequestMetrics(silent, metrics))
    assert metrics.registry.get_sample_value(f"{DURATION}_count") == 0

"""The HTTP interface of a real `rating-api` process on loopback."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import orjson
import pytest

from tests.api.httpclient import Reply, post_json, request
from tests.conftest import RatingPodFactory
from tests.procs import Proc

BATCH = {
    "items": [
        {"id": "agent-42", "up": 42, "down": 7},
        {"id": "skill-7", "stars": [25, 20, 75, 80, 60]},
    ]
}
BUCKET_FIELDS = {
    "schema",
    "pod",
    "boot_id",
    "uptime_s",
    "capacity",
    "refill_per_s",
    "tokens",
    "granted_total",
    "denied_total",
}
PROBLEM_PREFIX = "tag:openclaw-rating-edge,2026:problem:"
RATELIMIT = re.compile(r'^"bucket";r=(\d+);t=(\d+)$')


def rate(pod: Proc, payload: object = BATCH) -> Reply:
    return post_json(pod.url("public", "/v1/rate"), payload)


def bucket_state(pod: Proc) -> dict[str, Any]:
    reply = request(pod.url("admin", "/v1/bucket"))
    assert reply.status == 200
    state: dict[str, Any] = reply.json()
    return state


def metric_samples(pod: Proc) -> dict[str, float]:
    """`name{labels}` -> value, from the text exposition."""
    text = request(pod.url("admin", "/metrics")).body.decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_rates_votes_and_stars(roomy_pod: Proc) -> None:
    reply = rate(roomy_pod)
    assert reply.status == 200
    assert reply.media_type == "application/json"
    votes, stars = reply.json()["ratings"]
    assert (votes["id"], votes["kind"]) == ("agent-42", "votes")
    assert votes["lower_bound"] == pytest.approx(0.7333, abs=5e-5)
    assert (stars["id"], stars["kind"], stars["count"]) == ("skill-7", "stars", 260)
    assert stars["average"] == pytest.approx(3.5)


def test_answered_requests_carry_the_ratelimit_fields(roomy_pod: Proc) -> None:
    reply = rate(roomy_pod)
    assert reply.headers["ratelimit-policy"] == '"bucket";q=1000000000;w=1'
    assert RATELIMIT.match(reply.headers["ratelimit"])
    assert "retry-after" not in reply.headers


def test_an_empty_bucket_answers_429_with_retry_after_and_ratelimit(
    rating_pod: RatingPodFactory,
) -> None:
    pod = rating_pod("--bucket-capacity", "5", "--bucket-rate", "0.25")
    statuses = [rate(pod).status for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    reply = rate(pod)
    assert reply.status == 429
    assert reply.media_type == "application/problem+json"
    assert reply.json()["type"] == PROBLEM_PREFIX + "rate-limited"
    retry_after_s = int(reply.headers["retry-after"])
    assert 1 <= retry_after_s <= 4
    assert reply.headers["ratelimit-policy"] == '"bucket";q=5;w=20'
    assert reply.headers["ratelimit"] == f'"bucket";r=0;t={retry_after_s}'


def test_a_429_does_no_work_not_even_reading_the_body(rating_pod: RatingPodFactory) -> None:
    pod = rating_pod("--bucket-capacity", "1", "--bucket-rate", "0.01")
    assert rate(pod).status == 200
    reply = request(
        pod.url("public", "/v1/rate"), "POST", b"{not json", {"Content-Type": "text/plain"}
    )
    assert reply.status == 429


def test_bucket_counters_agree_with_the_requests_sent(rating_pod: RatingPodFactory) -> None:
    pod = rating_pod("--bucket-capacity", "10", "--bucket-rate", "0.01", name="counted-pod")
    replies = [rate(pod) for _ in range(14)]
    request(pod.url("public", "/healthz"))
    request(pod.url("public", "/readyz"))
    state = bucket_state(pod)
    assert set(state) == BUCKET_FIELDS
    assert (state["schema"], state["pod"]) == ("openclaw.bucket/v1", "counted-pod")
    assert (state["capacity"], state["refill_per_s"]) == (10.0, 0.01)
    assert (state["granted_total"], state["denied_total"]) == (10, 4)
    assert 0.0 <= state["tokens"] < 1.0
    assert [reply.status for reply in replies].count(429) == 4
    samples = metric_samples(pod)
    assert samples['openclaw_rating_api_requests_total{code="200"}'] == 10
    assert samples['openclaw_rating_api_requests_total{code="429"}'] == 4
    assert samples["openclaw_rating_api_request_duration_seconds_count"] == 14
    assert samples["openclaw_rating_api_token_bucket_granted_total"] == 10


def test_every_answered_request_counts_by_its_code(roomy_pod: Proc) -> None:
    before = metric_samples(roomy_pod)
    request(roomy_pod.url("public", "/nowhere"))
    request(
        roomy_pod.url("public", "/v1/rate"), "POST", b"{}", {"Content-Type": "application/json"}
    )
    rate(roomy_pod)
    after = metric_samples(roomy_pod)
    for code in ("200", "404", "422"):
        series = f'openclaw_rating_api_requests_total{{code="{code}"}}'
        assert after[series] - before.get(series, 0) == 1, code
    count = "openclaw_rating_api_request_duration_seconds_count"
    assert after[count] - before[count] == 3


def test_uptime_grows_and_boot_id_is_per_process(rating_pod: RatingPodFactory) -> None:
    first, second = rating_pod(name="pod-a"), rating_pod(name="pod-b")
    before, after = bucket_state(first), bucket_state(first)
    assert after["uptime_s"] > before["uptime_s"] > 0
    assert before["boot_id"] == after["boot_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", before["boot_id"])
    assert bucket_state(second)["boot_id"] != before["boot_id"]


def test_fresh_pod_exports_zero_baselines_and_current_fill(rating_pod: RatingPodFactory) -> None:
    pod = rating_pod("--bucket-capacity", "20", "--bucket-rate", "4")
    samples = metric_samples(pod)
    assert samples['openclaw_rating_api_requests_total{code="200"}'] == 0
    assert samples['openclaw_rating_api_requests_total{code="429"}'] == 0
    assert samples["openclaw_rating_api_token_bucket_fill"] == 20
    assert samples["openclaw_rating_api_token_bucket_capacity"] == 20
    assert samples["openclaw_rating_api_token_bucket_refill_rate"] == 4


JSON = {"Content-Type": "application/json"}
VOTE = {"id": "a", "up": 1, "down": 2}


class BadInput(NamedTuple):
    name: str
    body: bytes
    status: int
    slug: str
    pointer: str | None = None
    """The field that `errors` must name, when the body parsed."""
    headers: dict[str, str] = JSON


def body(payload: object) -> bytes:
    return orjson.dumps(payload)


BAD_INPUTS = [
    BadInput("malformed-json", b'{"items": [', 400, "malformed-json"),
    BadInput("empty-body", b"", 400, "malformed-json"),
    BadInput("invalid-utf8", b'{"items": "\xff"}', 400, "malformed-json"),
    BadInput(
        "text-plain",
        body(BATCH),
        415,
        "unsupported-media-type",
        headers={"Content-Type": "text/plain"},
    ),
    BadInput("no-content-type", body(BATCH), 415, "unsupported-media-type", headers={}),
    BadInput(
        "form",
        b"a=1",
        415,
        "unsupported-media-type",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    BadInput("body-over-1mib", b" " * (1024 * 1024 + 1), 413, "body-too-large"),
    BadInput("batch-over-max", body({"items": [VOTE] * 21}), 413, "batch-too-large", "/items"),
    BadInput("not-an-object", b"[1, 2]", 422, "invalid-value", ""),
    BadInput("no-items", b"{}", 422, "invalid-value", "/items"),
    BadInput(
        "negative-count", body({"items": [{**VOTE, "up": -1}]}), 422, "invalid-value", "/items/0/up"
    ),
    BadInput(
        "huge-count", body({"items": [{**VOTE, "up": 1e300}]}), 422, "invalid-value", "/items/0/up"
    ),
    BadInput(
        "four-star-levels",
        body({"items": [{"id": "a", "stars": [1, 2, 3, 4]}]}),
        422,
        "invalid-value",
        "/items/0/stars",
    ),
    BadInput(
        "confidence-one",
        body({"confidence": 1, "items": [VOTE]}),
        422,
        "invalid-value",
        "/confidence",
    ),
    BadInput(
        "confidence-zero",
        body({"confidence": 0.0, "items": [VOTE]}),
        422,
        "invalid-value",
        "/confidence",
    ),
    BadInput(
        "prior-mean-above-5",
        body({"items": [{"id": "a", "stars": [0, 0, 0, 0, 1], "prior": {"mean": 6, "weight": 1}}]}),
        422,
        "invalid-value",
        "/items/0/prior/mean",
    ),
]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[bad.name for bad in BAD_INPUTS])
def test_bad_input_gets_a_problem_naming_what_is_wrong(roomy_pod: Proc, bad: BadInput) -> None:
    reply = request(roomy_pod.url("public", "/v1/rate"), "POST", bad.body, bad.headers)
    assert reply.status == bad.status
    assert reply.media_type == "application/problem+json"
    problem = reply.json()
    assert (problem["type"], problem["status"]) == (PROBLEM_PREFIX + bad.slug, bad.status)
    assert problem["title"] and problem["detail"]
    if bad.pointer is not None:
        assert problem["errors"] == [{"pointer": bad.pointer, "detail": problem["detail"]}]
        assert problem["detail"].startswith(bad.pointer or "(body)")
    assert RATELIMIT.match(reply.headers["ratelimit"])


def test_a_chunked_body_over_the_limit_is_cut_off(rating_pod: RatingPodFactory) -> None:
    pod = rating_pod("--max-body-bytes", "1000")
    chunks = (b"x" * 400 for _ in range(5))  # no Content-Length: sent chunked
    reply = request(pod.url("public", "/v1/rate"), "POST", chunks, JSON)  # type: ignore[arg-type]
    assert reply.status == 413
    assert reply.json()["type"] == PROBLEM_PREFIX + "body-too-large"


@pytest.mark.parametrize(
    ("port", "method", "path", "status", "slug"),
    [
        ("public", "GET", "/nowhere", 404, "not-found"),
        ("public", "GET", "/v1/rate", 405, "method-not-allowed"),
        ("public", "DELETE", "/healthz", 405, "method-not-allowed"),
        ("admin", "GET", "/v1/rate", 404, "not-found"),
        ("admin", "POST", "/v1/bucket", 405, "method-not-allowed"),
    ],
    ids=["public-unknown-path", "rate-get", "healthz-delete", "rate-not-on-admin", "bucket-post"],
)
def test_unknown_routes_get_problems_too(
    roomy_pod: Proc, port: str, method: str, path: str, status: int, slug: str
) -> None:
    reply = request(roomy_pod.url(port, path), method)
    assert reply.status == status
    assert reply.media_type == "application/problem+json"
    assert reply.json()["type"] == PROBLEM_PREFIX + slug


def test_metrics_and_bucket_are_not_on_the_public_port(roomy_pod: Proc) -> None:
    assert request(roomy_pod.url("public", "/metrics")).status == 404
    assert request(roomy_pod.url("public", "/v1/bucket")).status == 404


def test_probes_answer(roomy_pod: Proc) -> None:
    assert request(roomy_pod.url("public", "/healthz")).json() == {"status": "ok"}
    assert request(roomy_pod.url("public", "/readyz")).json() == {"status": "ready"}


def test_openapi_documents_every_path_and_error(roomy_pod: Proc) -> None:
    document = request(roomy_pod.url("public", "/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/v1/rate", "/healthz", "/readyz", "/openapi.json"}
    responses = document["paths"]["/v1/rate"]["post"]["responses"]
    assert set(responses) == {"200", "400", "413", "415", "422", "429"}
    assert "Retry-After" in responses["429"]["headers"]
    assert document["components"]["schemas"]["RateRequest"]["properties"]["items"]["maxItems"] == 20

"""The bucket state's bounds: what `rating-api` starts with, the scaler's parser accepts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.app import Service, admin_app
from api.config import ConfigError, from_values
from scaler.bucket_state import BucketStateError, parse_bucket_state
from tests.api.test_app_asgi import call

LOOPBACK = ["--host", "127.0.0.1", "--port", "0", "--admin-port", "0"]

REFUSED = [
    pytest.param(["--bucket-capacity", "2e9"], {}, "--bucket-capacity", id="capacity-2e9"),
    pytest.param([], {"RATING_API_BUCKET_RATE": "1e10"}, "--bucket-rate", id="rate-env-1e10"),
    pytest.param(["--pod-name", "p" * 300], {}, "--pod-name", id="pod-name-300"),
    pytest.param(["--pod-name", "pod 7"], {}, "--pod-name", id="pod-name-space"),
    pytest.param([], {"POD_NAME": "pöd"}, "--pod-name", id="pod-name-env-utf8"),
    pytest.param(["--port", "\u0661\u0662"], {}, "--port", id="port-arabic-indic"),
    pytest.param(["--max-batch", "\u0967\u0966"], {}, "--max-batch", id="batch-devanagari"),
    pytest.param([], {"RATING_API_BUCKET_RATE": "\u0665\u0660"}, "--bucket-rate", id="rate-env"),
    pytest.param(["--request-timeout", "\uff13"], {}, "--request-timeout", id="timeout-fullwidth"),
    pytest.param(["--max-connections", "1_000"], {}, "--max-connections", id="underscore"),
]


@pytest.mark.parametrize(("argv", "env", "flag"), REFUSED)
def test_the_real_process_refuses_a_value_the_scaler_could_not_take(
    argv: list[str], env: dict[str, str], flag: str
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RATING_API_")}
    result = subprocess.run(
        [sys.executable, "-m", "api", *LOOPBACK, *argv],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=30,  # a process that starts instead of refusing fails here
    )
    assert result.returncode == 2, result.stderr
    assert f"error: {flag}" in result.stderr


def test_the_refusal_says_the_bound() -> None:
    with pytest.raises(ConfigError, match=r"--bucket-capacity \[RATING_API_BUCKET_CAPACITY\] "):
        from_values({"bucket_capacity": "2e9"}, {})
    with pytest.raises(ConfigError, match="1 to 253 characters"):
        from_values({"pod_name": "p" * 254}, {})


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10, max_value=10**12).map(str),
    st.sampled_from(["1e9", "1000000000.0000001", "1", "0.999", "5e-324", "2e9"]),
)
names = st.one_of(st.text(min_size=0, max_size=260), st.text("ab-.Z9", min_size=250, max_size=256))


async def bucket_document(service: Service, requests: int) -> bytes:
    for _ in range(requests):
        service.bucket.try_acquire()
    sent = await call(admin_app(service), "GET", "/v1/bucket", [])
    assert sent[0]["status"] == 200
    return bytes(sent[1]["body"])


@settings(max_examples=300, deadline=None)
@given(capacity=numbers, rate=numbers, pod=names, requests=st.integers(0, 30))
def test_whatever_the_api_accepts_the_scalers_parser_accepts(
    capacity: str, rate: str, pod: str, requests: int
) -> None:
    try:
        config = from_values(
            {"bucket_capacity": capacity, "bucket_rate": rate, "pod_name": pod}, {}
        )
    except ConfigError:
        return  # refused at start: never reported
    body = asyncio.run(bucket_document(Service.create(config), requests))
    try:
        state = parse_bucket_state(body)
    except BucketStateError as exc:
        pytest.fail(f"the api started with {capacity=} {rate=} {pod=} but the scaler says {exc}")
    assert (state.pod, state.capacity, state.refill_per_s) == (
        config.pod_name,
        config.bucket_capacity,
        config.bucket_rate,
    )


@pytest.mark.parametrize(
    ("capacity", "rate"), [("1e9", "1e9"), ("1", "1e-300")], ids=["largest", "smallest"]
)
def test_the_extremes_the_api_accepts_parse(capacity: str, rate: str) -> None:
    config = from_values({"bucket_capacity": capacity, "bucket_rate": rate, "pod_name": "p"}, {})
    body = asyncio.run(bucket_document(Service.create(config), 3))
    assert parse_bucket_state(body).capacity == float(capacity)

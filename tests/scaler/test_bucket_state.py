from __future__ import annotations

from typing import Any

import orjson
import pytest

from scaler.bucket_state import BucketStateError, parse_bucket_state

GOOD: dict[str, Any] = {
    "schema": "openclaw.bucket/v1", "pod": "rating-api-5d8f-x2x9q", "boot_id": "3f1c",
    "uptime_s": 812.113, "capacity": 100.0, "refill_per_s": 50.0, "tokens": 37.25,
    "granted_total": 40211, "denied_total": 1290,
}  # fmt: skip


def test_parses_the_contract_example() -> None:
    state = parse_bucket_state(orjson.dumps(GOOD))
    assert state.pod == "rating-api-5d8f-x2x9q"
    assert state.requested_total == 41501
    assert state.tokens == 37.25


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>", id="not-json"),
        pytest.param(b"[1,2]", id="not-object"),
        pytest.param(orjson.dumps({**GOOD, "schema": "v0"}), id="wrong-schema"),
        pytest.param(orjson.dumps({**GOOD, "pod": ""}), id="empty-pod"),
        pytest.param(orjson.dumps({**GOOD, "boot_id": 7}), id="boot-id-number"),
        pytest.param(orjson.dumps({**GOOD, "granted_total": -1}), id="negative-counter"),
        pytest.param(orjson.dumps({**GOOD, "denied_total": True}), id="bool-counter"),
        pytest.param(orjson.dumps({**GOOD, "capacity": 1e308}), id="absurd-capacity"),
        pytest.param(orjson.dumps({**GOOD, "capacity": 0}), id="zero-capacity"),
        pytest.param(orjson.dumps({**GOOD, "tokens": 101}), id="tokens-over-capacity"),
        pytest.param(orjson.dumps({**GOOD, "uptime_s": "812"}), id="uptime-string"),
        pytest.param(b'{"schema":"openclaw.bucket/v1","uptime_s":NaN}', id="nan"),
        pytest.param(orjson.dumps({k: v for k, v in GOOD.items() if k != "tokens"}), id="missing"),
        pytest.param(b'{"schema":"openclaw.bucket/v1","granted_total":1e400}', id="overflow"),
    ],
)
def test_rejects_unbelievable_answers(body: bytes) -> None:
    with pytest.raises(BucketStateError):
        parse_bucket_state(body)

"""An activator's `/v1/held` answer: untrusted input, checked before it becomes demand."""

from __future__ import annotations

import orjson
import pytest

from scaler.held_state import SCHEMA, HeldStateError, parse_held_state

GOOD = {
    "schema": SCHEMA,
    "activator": "rating-activator-7d9f-abcde",
    "boot_id": "3f1c",
    "uptime_s": 12.5,
    "held": 3,
    "oldest_held_s": 0.25,
    "held_total": 40,
    "version": 5,
}


def test_a_good_answer_parses_and_is_a_rate_over_at_least_a_second() -> None:
    state = parse_held_state(orjson.dumps(GOOD))
    assert (state.held, state.oldest_held_s, state.version) == (3, 0.25, 5)
    assert state.demand_per_s == 3.0  # 3 requests in 0.25 s count as 3/s, not 12/s


@pytest.mark.parametrize(
    ("change", "named"),
    [
        pytest.param({"schema": "openclaw.bucket/v1"}, "schema", id="other-schema"),
        pytest.param({"held": -1}, "held", id="negative"),
        pytest.param({"held": 2.5}, "held", id="fraction"),
        pytest.param({"held": True}, "held", id="bool"),
        pytest.param({"held": 10**15}, "held", id="huge"),
        pytest.param({"oldest_held_s": "1"}, "oldest_held_s", id="string"),
        pytest.param({"version": None}, "version", id="missing-version"),
        pytest.param({"activator": ""}, "activator", id="empty-name"),
    ],
)
def test_a_bad_answer_is_refused_naming_the_field(change: dict[str, object], named: str) -> None:
    with pytest.raises(HeldStateError, match=named):
        parse_held_state(orjson.dumps(GOOD | change))


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b"{", b"null", orjson.dumps(GOOD).replace(b'"held":3', b'"held":' + b"9" * 400)],
    ids=["empty", "list", "cut", "null", "held-past-any-integer"],
)
def test_what_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(HeldStateError):
        parse_held_state(body)

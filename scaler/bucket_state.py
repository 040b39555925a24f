"""What a rating pod says about its token bucket (`GET /v1/bucket`), checked.

A pod's answer is untrusted input: the scaler sums it into a scaling decision, so
anything absurd is rejected here, per pod, before it can poison the total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

SCHEMA = "openclaw.bucket/v1"
MAX_TOKENS = 1e9  # a capacity or refill rate beyond this is a bug or an attack
MAX_COUNTER = float(2**53)  # beyond this a float loses whole tokens
MAX_NAME_LEN = 253


class BucketStateError(ValueError):
    """The pod answered, but not with a believable bucket state."""


@dataclass(frozen=True, slots=True)
class BucketState:
    pod: str
    boot_id: str
    uptime_s: float
    capacity: float
    refill_per_s: float
    tokens: float
    granted_total: float
    denied_total: float

    @property
    def requested_total(self) -> float:
        """Tokens asked for since boot, admitted or not: the demand counter."""
        return self.granted_total + self.denied_total


def parse_bucket_state(body: bytes) -> BucketState:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BucketStateError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BucketStateError(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != SCHEMA:
        raise BucketStateError(f"schema is {str(doc.get('schema'))[:60]!r}, expected {SCHEMA!r}")
    state = BucketState(
        pod=_name(doc, "pod"),
        boot_id=_name(doc, "boot_id"),
        uptime_s=_number(doc, "uptime_s", 0.0, MAX_COUNTER),
        capacity=_number(doc, "capacity", 0.0, MAX_TOKENS),
        refill_per_s=_number(doc, "refill_per_s", 0.0, MAX_TOKENS),
        tokens=_number(doc, "tokens", 0.0, MAX_TOKENS),
        granted_total=_number(doc, "granted_total", 0.0, MAX_COUNTER),
        denied_total=_number(doc, "denied_total", 0.0, MAX_COUNTER),
    )
    if state.capacity <= 0:
        raise BucketStateError("capacity must be > 0")
    if state.tokens > state.capacity * (1 + 1e-9):
        raise BucketStateError(f"tokens {state.tokens} exceed capacity {state.capacity}")
    return state


def _name(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LEN:
        raise BucketStateError(f"{key} must be a string of 1..{MAX_NAME_LEN} characters")
    return value


def _number(doc: dict[str, Any], key: str, low: float, high: float) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BucketStateError(f"{key} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or not low <= number <= high:
        raise BucketStateError(f"{key} = {value!r} is outside [{low:g}, {high:g}]")
    return number

"""What a rating pod says about its token bucket (`GET /v1/bucket`), checked.

A pod's answer is untrusted input: the scaler sums it into a scaling decision, so
anything absurd is rejected here, per pod, before it can poison the total. The schema
and the bounds are `api.bucket_schema`'s, which `rating-api` checks its settings
against at start-up: whatever a pod may be started with, this parser accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from api.bucket_schema import CAPACITY, COUNTER, REFILL_PER_S, SCHEMA, TOKENS, Bound, name_problem


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
        uptime_s=_number(doc, "uptime_s", COUNTER),
        capacity=_number(doc, "capacity", CAPACITY),
        refill_per_s=_number(doc, "refill_per_s", REFILL_PER_S),
        tokens=_number(doc, "tokens", TOKENS),
        granted_total=_number(doc, "granted_total", COUNTER),
        denied_total=_number(doc, "denied_total", COUNTER),
    )
    if state.tokens > state.capacity * (1 + 1e-9):
        raise BucketStateError(f"tokens {state.tokens} exceed capacity {state.capacity}")
    return state


def _name(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    problem = name_problem(value)
    if problem is not None or not isinstance(value, str):
        raise BucketStateError(f"{key} {problem}")
    return value


def _number(doc: dict[str, Any], key: str, bound: Bound) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BucketStateError(f"{key} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not bound.holds(number):
        raise BucketStateError(f"{key} = {value!r} must be {bound.describe()}")
    return number

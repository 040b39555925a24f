"""What an activator says about the requests it holds (`GET /v1/held`), checked.

Like a pod's bucket state, an activator's answer is untrusted input that the scaler
sums into a scaling decision: anything absurd is rejected here. `rating-activator`
writes this schema (`activator/app.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

SCHEMA = "openclaw.activator/v1"
MAX_HELD = 10_000_000  # far beyond any --max-held
MAX_SECONDS = 1e9
HELD_PATH = "/v1/held"
MIN_SPAN_S = 1.0  # held requests are a rate over at least this long


class HeldStateError(ValueError):
    """The activator answered, but not with a believable state."""


@dataclass(frozen=True, slots=True)
class HeldState:
    activator: str
    boot_id: str
    held: int
    oldest_held_s: float
    version: int

    @property
    def demand_per_s(self) -> float:
        """The held requests as a rate: how many came over the time the oldest has
        waited (at least `MIN_SPAN_S`). Forwarded, they leave the queue and a pod
        counts them: a request is never demand in both places."""
        return self.held / max(self.oldest_held_s, MIN_SPAN_S)


def parse_held_state(body: bytes) -> HeldState:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HeldStateError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise HeldStateError(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != SCHEMA:
        raise HeldStateError(f"schema is {str(doc.get('schema'))[:60]!r}, expected {SCHEMA!r}")
    return HeldState(
        activator=_text(doc, "activator"),
        boot_id=_text(doc, "boot_id"),
        held=int(_number(doc, "held", MAX_HELD, whole=True)),
        oldest_held_s=_number(doc, "oldest_held_s", MAX_SECONDS),
        version=int(_number(doc, "version", 2**62, whole=True)),
    )


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= 253 or not value.isprintable():
        raise HeldStateError(f"{key} must be a printable string of 1 to 253 characters")
    return value


def _number(doc: dict[str, Any], key: str, high: float, *, whole: bool = False) -> float:
    value = doc.get(key)
    kinds = int if whole else int | float
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise HeldStateError(f"{key} must be a {'whole ' if whole else ''}number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not (math.isfinite(number) and 0 <= number <= high):
        raise HeldStateError(f"{key} = {value!r} must be in [0, {high:g}]")
    return number

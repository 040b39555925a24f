"""The bucket state a pod reports on `GET /v1/bucket`: its schema and the bounds of each field.

One definition for both sides of the wire: `rating-api` refuses at start-up a setting
whose report the scaler would reject (`api/config.py`), and the scaler's parser
(`scaler/bucket_state.py`) rejects a report outside the same bounds. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

SCHEMA = "openclaw.bucket/v1"
MAX_TOKENS = 1e9
"""A capacity, refill rate or fill beyond this is a bug or an attack."""
MAX_COUNTER = float(2**53)
"""Beyond this a float counter loses whole tokens."""
MAX_NAME_LEN = 253
"""A Kubernetes object name (DNS subdomain) is at most 253 characters."""
_NAME = re.compile(r"[\x21-\x7e]+")
"""Visible ASCII: a name ends up in logs, labels and JSON, so no spaces or control bytes."""


@dataclass(frozen=True, slots=True)
class Bound:
    """A closed interval of finite numbers, open at `low` when `low_open`."""

    low: float
    high: float
    low_open: bool = False

    def holds(self, value: float) -> bool:
        if not math.isfinite(value) or value > self.high:
            return False
        return value > self.low if self.low_open else value >= self.low

    def describe(self) -> str:
        low = f"> {self.low:g}" if self.low_open else f">= {self.low:g}"
        return f"{low} and <= {self.high:g}"


CAPACITY = Bound(0.0, MAX_TOKENS, low_open=True)
REFILL_PER_S = Bound(0.0, MAX_TOKENS)
TOKENS = Bound(0.0, MAX_TOKENS)
COUNTER = Bound(0.0, MAX_COUNTER)
"""`uptime_s`, `granted_total` and `denied_total`."""


def name_problem(value: object) -> str | None:
    """What is wrong with a `pod` or `boot_id` value, or None when it is fine."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LEN:
        return f"must be a string of 1 to {MAX_NAME_LEN} characters"
    if not _NAME.fullmatch(value):
        return "must be visible ASCII characters only (no spaces or control characters)"
    return None

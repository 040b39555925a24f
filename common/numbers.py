"""Numbers as both services accept them from flags, and the scaler from triggers: ASCII
decimal only.

Python's `int()` and `float()` also take Arabic-Indic or full-width digits, `_`
separators, `inf` and `nan`; a trigger or a flag must not. A text that is not such a
number gives None, and the caller says which flag or key it was.
"""

from __future__ import annotations

import math
import re

_INTEGER = re.compile(r"[0-9]{1,18}", re.ASCII)
_DECIMAL = re.compile(
    r"[+-]?([0-9]{1,30}(\.[0-9]{0,30})?|\.[0-9]{1,30})([eE][+-]?[0-9]{1,3})?", re.ASCII
)


def parse_integer(text: str) -> int | None:
    """A non-negative ASCII integer (at most 18 digits), or None."""
    return int(text) if _INTEGER.fullmatch(text) else None


def parse_decimal(text: str) -> float | None:
    """A finite ASCII decimal such as `5`, `-0.25` or `1e3`, or None."""
    if not _DECIMAL.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None  # 1e999 overflows to inf


def finite_at_least(value: float, low: float) -> bool:
    """`value` is a number (not inf or NaN) of at least `low`."""
    return math.isfinite(value) and value >= low


def finite_above(value: float, low: float) -> bool:
    """`value` is a number (not inf or NaN) above `low`."""
    return math.isfinite(value) and value > low

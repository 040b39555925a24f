"""`POST /v1/rate` bodies: validate a decoded JSON payload and rate its items.

Pure: takes what `orjson.loads` returned, gives the response document or raises
`InvalidInput` naming the offending field with a JSON Pointer (RFC 6901).
Unknown fields are refused, so a misspelt field fails loudly instead of being ignored.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from api.ratings import (
    STAR_LEVELS,
    Prior,
    star_average,
    star_lower_bound,
    wilson_lower_bound,
    z_for_confidence,
)

DEFAULT_CONFIDENCE = 0.95
MAX_COUNT = 2**53 - 1
"""Largest count accepted: every count and sum stays exact in a float."""
MAX_ID_LENGTH = 256
MAX_PRIOR_WEIGHT = 1e12

_TOP_FIELDS = frozenset({"items", "confidence"})
_VOTE_FIELDS = frozenset({"id", "up", "down"})
_STAR_FIELDS = frozenset({"id", "stars", "prior"})
_PRIOR_FIELDS = frozenset({"mean", "weight"})

Json = dict[str, Any]


class InvalidInput(ValueError):
    """A request body that cannot be rated: `status` 422, or 413 for a batch too big."""

    def __init__(self, pointer: str, message: str, status: int = 422) -> None:
        super().__init__(f"{pointer or '(body)'}: {message}")
        self.pointer = pointer
        self.message = message
        self.status = status


def rate_payload(payload: object, max_batch: int) -> Json:
    """The response document for a decoded request body."""
    if not isinstance(payload, dict):
        raise InvalidInput("", "the body must be a JSON object with an `items` array")
    _refuse_unknown(payload, _TOP_FIELDS, "")
    confidence = _confidence(payload.get("confidence", DEFAULT_CONFIDENCE))
    items = _items(payload.get("items"), max_batch)
    z = z_for_confidence(confidence)
    ratings = [_rate_item(item, f"/items/{index}", z) for index, item in enumerate(items)]
    return {"confidence": confidence, "ratings": ratings}


def _items(value: object, max_batch: int) -> list[Any]:
    if value is None:
        raise InvalidInput("/items", "required: an array of items to rate")
    if not isinstance(value, list):
        raise InvalidInput("/items", "must be an array of items")
    if not value:
        raise InvalidInput("/items", "must hold at least one item")
    if len(value) > max_batch:
        message = f"holds {len(value)} items, more than the limit of {max_batch} per request"
        raise InvalidInput("/items", message, status=413)
    return value


def _rate_item(item: object, pointer: str, z: float) -> Json:
    if not isinstance(item, dict):
        raise InvalidInput(pointer, "must be an object: {id, up, down} or {id, stars[, prior]}")
    if "stars" in item:
        return _rate_stars(item, pointer, z)
    if "up" in item or "down" in item:
        return _rate_votes(item, pointer, z)
    raise InvalidInput(pointer, "must have `up` and `down` (votes) or `stars` (histogram)")


def _rate_votes(item: Json, pointer: str, z: float) -> Json:
    _refuse_unknown(item, _VOTE_FIELDS, pointer)
    item_id = _id(item.get("id"), pointer)
    up = _count(item.get("up"), f"{pointer}/up")
    down = _count(item.get("down"), f"{pointer}/down")
    count = up + down
    return {
        "id": item_id,
        "kind": "votes",
        "count": count,
        "up_share": up / count if count else None,
        "lower_bound": wilson_lower_bound(up, down, z),
    }


def _rate_stars(item: Json, pointer: str, z: float) -> Json:
    _refuse_unknown(item, _STAR_FIELDS, pointer)
    item_id = _id(item.get("id"), pointer)
    stars = _histogram(item.get("stars"), f"{pointer}/stars")
    prior = _prior(item.get("prior"), f"{pointer}/prior")
    return {
        "id": item_id,
        "kind": "stars",
        "count": sum(stars),
        "average": star_average(stars, prior),
        "lower_bound": star_lower_bound(stars, z),
    }


def _refuse_unknown(obj: Json, allowed: frozenset[str], pointer: str) -> None:
    if obj.keys() <= allowed:
        return
    unknown = sorted(obj.keys() - allowed)[0]
    expected = ", ".join(sorted(allowed))
    raise InvalidInput(
        f"{pointer}/{_escape(unknown)}", f"unknown field; expected one of {expected}"
    )


def _id(value: object, pointer: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
        raise InvalidInput(
            f"{pointer}/id", f"required: a string of 1 to {MAX_ID_LENGTH} characters"
        )
    return value


def _count(value: object, pointer: str) -> int:
    # JSON has no integer type: 7.0 is the number 7, so whole floats count as integers.
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise InvalidInput(pointer, f"required: a whole number from 0 to {MAX_COUNT}")
    return value


def _histogram(value: object, pointer: str) -> list[int]:
    if not isinstance(value, list) or len(value) != STAR_LEVELS:
        raise InvalidInput(pointer, "must be an array of 5 counts, the count of 1-star first")
    return [_count(n, f"{pointer}/{level}") for level, n in enumerate(value)]


def _prior(value: object, pointer: str) -> Prior | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(pointer, "must be an object {mean, weight}")
    _refuse_unknown(value, _PRIOR_FIELDS, pointer)
    mean = _number(value.get("mean"), f"{pointer}/mean", 1.0, 5.0, "from 1 to 5 stars")
    weight = _number(
        value.get("weight"), f"{pointer}/weight", 0.0, MAX_PRIOR_WEIGHT, "from 0 to 1e12 votes"
    )
    return Prior(mean=mean, weight=weight)


def _confidence(value: object) -> float:
    if not _is_number(value) or not 0.0 < value < 1.0:
        raise InvalidInput("/confidence", "must be a number strictly between 0 and 1, e.g. 0.95")
    return float(value)


def _number(value: object, pointer: str, low: float, high: float, what: str) -> float:
    if not _is_number(value) or not low <= value <= high:
        raise InvalidInput(pointer, f"required: a number {what}")
    return float(value)


def _is_number(value: object) -> TypeGuard[int | float]:
    return (type(value) is int) or (type(value) is float and math.isfinite(value))


def _escape(key: str) -> str:
    """A JSON Pointer reference token (RFC 6901, section 3)."""
    return key.replace("~", "~0").replace("/", "~1")

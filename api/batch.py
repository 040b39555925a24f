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
    rate_stars,
    wilson_lower_bound,
    z_for_confidence,
)

DEFAULT_CONFIDENCE = 0.95
DEFAULT_Z = z_for_confidence(DEFAULT_CONFIDENCE)
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
    confidence = payload.get("confidence", DEFAULT_CONFIDENCE)
    if confidence == DEFAULT_CONFIDENCE:
        z = DEFAULT_Z
    else:
        confidence = _confidence(confidence)
        z = z_for_confidence(confidence)
    items = _items(payload.get("items"), max_batch)
    ratings = [_rate_item(item, index, z) for index, item in enumerate(items)]
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


def _rate_item(item: object, index: int, z: float) -> Json:
    if type(item) is dict:
        if "stars" in item:
            return _rate_stars(item, index, z)
        if "up" in item or "down" in item:
            return _rate_votes(item, index, z)
        raise InvalidInput(
            f"/items/{index}", "must have `up` and `down` (votes) or `stars` (histogram)"
        )
    raise InvalidInput(
        f"/items/{index}", "must be an object: {id, up, down} or {id, stars[, prior]}"
    )


def _rate_votes(item: Json, index: int, z: float) -> Json:
    # Pointers to fields are built only on errors: this runs for every item of every request.
    if not item.keys() <= _VOTE_FIELDS:
        _refuse_unknown(item, _VOTE_FIELDS, f"/items/{index}")
    item_id = item.get("id")
    if type(item_id) is not str or not 0 < len(item_id) <= MAX_ID_LENGTH:
        raise _bad_id(index)
    up, down = item.get("up"), item.get("down")
    if not (
        type(up) is int and type(down) is int and 0 <= up <= MAX_COUNT and 0 <= down <= MAX_COUNT
    ):
        up = _count(up, f"/items/{index}/up")
        down = _count(down, f"/items/{index}/down")
    count = up + down
    return {
        "id": item_id,
        "kind": "votes",
        "count": count,
        "up_share": up / count if count else None,
        "lower_bound": wilson_lower_bound(up, down, z),
    }


def _rate_stars(item: Json, index: int, z: float) -> Json:
    if not item.keys() <= _STAR_FIELDS:
        _refuse_unknown(item, _STAR_FIELDS, f"/items/{index}")
    item_id = item.get("id")
    if type(item_id) is not str or not 0 < len(item_id) <= MAX_ID_LENGTH:
        raise _bad_id(index)
    stars = _histogram(item.get("stars"), index)
    prior = item.get("prior")
    votes, average, lower_bound = rate_stars(
        stars, z, None if prior is None else _prior(prior, index)
    )
    return {
        "id": item_id,
        "kind": "stars",
        "count": votes,
        "average": average,
        "lower_bound": lower_bound,
    }


def _refuse_unknown(obj: Json, allowed: frozenset[str], pointer: str) -> None:
    if obj.keys() <= allowed:
        return
    unknown = sorted(obj.keys() - allowed)[0]
    expected = ", ".join(sorted(allowed))
    raise InvalidInput(
        f"{pointer}/{_escape(unknown)}", f"unknown field; expected one of {expected}"
    )


def _bad_id(index: int) -> InvalidInput:
    message = f"required: a string of 1 to {MAX_ID_LENGTH} characters"
    return InvalidInput(f"/items/{index}/id", message)


def _count(value: object, pointer: str) -> int:
    # JSON has no integer type: 7.0 is the number 7, so whole floats count as integers.
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise InvalidInput(pointer, f"required: a whole number from 0 to {MAX_COUNT}")
    return value


def _histogram(value: object, index: int) -> list[int]:
    pointer = f"/items/{index}/stars"
    if type(value) is not list or len(value) != STAR_LEVELS:
        raise InvalidInput(pointer, "must be an array of 5 counts, the count of 1-star first")
    for n in value:
        if type(n) is not int or not 0 <= n <= MAX_COUNT:
            # Rare: whole floats to convert, or an error to name by its index.
            return [_count(n, f"{pointer}/{level}") for level, n in enumerate(value)]
    return value


def _prior(value: object, index: int) -> Prior | None:
    if value is None:
        return None
    pointer = f"/items/{index}/prior"
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

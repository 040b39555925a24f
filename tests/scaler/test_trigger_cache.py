"""Parsed triggers cached by their metadata; the namespace rule checked on every call."""

from __future__ import annotations

import pytest

from scaler.config import DEFAULT_HOST_POLICY
from scaler.trigger import MetadataError
from scaler.trigger_cache import TriggerCache

SLICES = {"endpointSlices": "edge/rating-api", "scalerAddress": "rating-scaler:6000"}


def test_the_same_metadata_is_parsed_once() -> None:
    triggers = TriggerCache(DEFAULT_HOST_POLICY)
    first = triggers.parse("edge", SLICES)
    assert triggers.parse("edge", dict(SLICES)) is first
    info = triggers.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 1, 1)


def test_a_cached_trigger_is_still_refused_to_another_namespace() -> None:
    triggers = TriggerCache(DEFAULT_HOST_POLICY)
    triggers.parse("edge", SLICES)
    with pytest.raises(MetadataError, match="namespace 'edge' is not the ScaledObject's") as err:
        triggers.parse("payments", SLICES)
    assert err.value.key == "endpointSlices"


def test_clear_drops_every_trigger() -> None:
    triggers = TriggerCache(DEFAULT_HOST_POLICY, maxsize=4)
    for port in range(1, 7):
        triggers.parse("edge", {"endpoints": f"127.0.0.1:{port}"})
    assert triggers.cache_info().currsize == 4
    triggers.clear()
    assert triggers.cache_info().currsize == 0

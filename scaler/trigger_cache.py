"""Parsed triggers, cached: KEDA sends the same metadata map on every call.

The cache is bounded (least recently used out), keyed by the metadata alone; the
namespace rule (`policy.namespace_problem`) depends on the caller and is checked on
every call.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from scaler.policy import HostPolicy
from scaler.trigger import TriggerConfig, check_namespace, parse_trigger

MAX_CACHED = 1024


class TriggerCache:
    def __init__(self, hosts: HostPolicy, maxsize: int = MAX_CACHED) -> None:
        def parse(items: frozenset[tuple[str, str]]) -> TriggerConfig:
            return parse_trigger(dict(items), hosts)

        self._parse = functools.lru_cache(maxsize=maxsize)(parse)

    def parse(self, namespace: str, metadata: Mapping[str, str]) -> TriggerConfig:
        """The trigger a ScaledObject in `namespace` gives; raises MetadataError."""
        return check_namespace(self._parse(frozenset(metadata.items())), namespace)

    def clear(self) -> None:
        """Drop every parsed trigger (a target was forgotten: some may name it)."""
        self._parse.cache_clear()

    def cache_info(self) -> Any:
        """functools' hits, misses, maxsize and currsize."""
        return self._parse.cache_info()

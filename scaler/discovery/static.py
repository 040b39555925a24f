"""`endpoints` targets: a fixed list of `host:port` pairs (local runs, tests)."""

from __future__ import annotations

from scaler.discovery.contract import Unwatched


class StaticDiscovery(Unwatched):
    def __init__(self, endpoints: tuple[tuple[str, int], ...]) -> None:
        self._endpoints = list(endpoints)

    async def addresses(self) -> list[tuple[str, int]]:
        return list(self._endpoints)

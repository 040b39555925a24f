"""The `Discovery` contract every way of finding a target's pods keeps.

A discovery is asked for the pods' addresses at each poll; one that follows changes by
itself (EndpointSlices) also says when the set changed. `DiscoveryError` means the
list could not be read this time: the poller keeps using the previous one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class DiscoveryError(Exception):
    """The pod list could not be read this time; the previous list stays in use."""


class Discovery(Protocol):
    def start(self, on_change: Callable[[], None]) -> None:
        """Begin following the pods; `on_change` is called when the set changes by itself."""
        ...

    async def close(self) -> None: ...

    async def addresses(self) -> list[tuple[str, int]]:
        """The pods' (host, port) pairs right now."""
        ...


class Unwatched:
    """Discovery that is only asked, never tells: nothing to start or close."""

    def start(self, on_change: Callable[[], None]) -> None:
        pass

    async def close(self) -> None:
        pass

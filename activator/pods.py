"""Where the ready rating pods come from: a file for local runs, EndpointSlices in a cluster.

Each source calls `on_change` with the ready pods' public `host:port` addresses
whenever the set changes, and at start. The file is polled every `poll_s` (0.1 s
by default, a stat each time); a missing or unreadable file keeps the last list and
is logged once, as is each line that is not `host:port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from scaler.discovery import DiscoveryError
from scaler.discovery.endpointslices import EndpointSliceDiscovery, KubeApi
from scaler.target_key import join_host_port

log = logging.getLogger("activator.pods")
OnChange = Callable[[Sequence[str]], None]
RELIST_S = 1.0  # EndpointSlices: a look at the list at least this often besides the watch


class PodSource(Protocol):
    async def run(self, on_change: OnChange) -> None:
        """Follow the ready pods until cancelled, calling `on_change` on each change."""
        ...


def parse_endpoints(text: str) -> tuple[list[str], list[str]]:
    """The `host:port` lines of an endpoints file, and the lines that are not."""
    pods: list[str] = []
    bad: list[str] = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        ok = sep and host and port.isascii() and port.isdigit() and 0 < int(port) < 65536
        (pods if ok else bad).append(entry)
    return pods, bad


class EndpointsFile:
    """`--endpoints-file`: one ready pod's public `host:port` per line."""

    def __init__(self, path: Path, *, poll_s: float = 0.1) -> None:
        self._path = path
        self._poll_s = poll_s
        self._seen: tuple[int, int, int] | None = None  # inode, size, mtime_ns
        self._failing = False

    async def run(self, on_change: OnChange) -> None:
        last: list[str] | None = None
        while True:
            pods = self._read()
            if pods is not None and pods != last:
                last = pods
                log.info("ready pods from %s: %d %s", self._path, len(pods), ",".join(pods[:10]))
                on_change(pods)
            await asyncio.sleep(self._poll_s)

    def _read(self) -> list[str] | None:
        """The file's pods if it changed since the last read, else None."""
        try:
            info = os.stat(self._path)
            seen = (info.st_ino, info.st_size, info.st_mtime_ns)
            if seen == self._seen:
                return None
            text = self._path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            if not self._failing:
                log.warning("cannot read %s (keeping the last pods): %s", self._path, exc)
            self._failing = True
            return None
        self._failing, self._seen = False, seen
        pods, bad = parse_endpoints(text)
        if bad:
            log.warning("%s: ignoring lines that are not host:port: %s", self._path, bad[:5])
        return pods


class EndpointSlicePods:
    """`--endpoint-slices`: the Service's EndpointSlices, listed and watched, with the
    scaler's rule for a serving endpoint (ready and not terminating)."""

    def __init__(self, namespace: str, service: str, port: int, kubeconfig: Path | None) -> None:
        self._discovery = EndpointSliceDiscovery(namespace, service, port, KubeApi(kubeconfig))

    async def run(self, on_change: OnChange) -> None:
        changed = asyncio.Event()
        self._discovery.start(changed.set)
        last: list[str] | None = None
        try:
            while True:
                changed.clear()
                try:
                    found = await self._discovery.addresses()
                except DiscoveryError as exc:
                    log.warning("EndpointSlices (keeping the last pods): %s", exc)
                else:
                    pods = [join_host_port(host, port) for host, port in found]
                    if pods != last:
                        last = pods
                        log.info("ready pods from EndpointSlices: %d %s", len(pods), pods[:10])
                        on_change(pods)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RELIST_S):
                        await changed.wait()
        finally:
            await self._discovery.close()

"""Waiting until a child answers: over HTTP (sync and async) or in its log.

Each wait polls until its check passes, and raises `StartError` (with the child's log
tail) as soon as the child exits, or when `timeout_s` runs out. One HTTP way each: urllib
for the sync wait, a bare HTTP/1.0 GET over asyncio streams for the async one.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

from harness.child import Child, StartError

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 1.0
PROBE_EVERY_S = 0.05


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now, and that no other call in
    this process has handed out.

    Taken below the kernel's ephemeral range: a port the kernel picked for `bind(0)` is
    also one it may give any outgoing connection (hey's, a client's) before the child
    that was told to listen on it gets there, and then the child fails with "Address
    already in use". Below that range only an explicit bind can take it.
    """
    low, high = _OUR_PORTS
    for _ in range(200):
        port = _random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise OSError(f"no free TCP port on {HOST} in {low}-{high - 1} after 200 tries")


def _our_ports() -> tuple[int, int]:
    """[low, high): the ports below the ephemeral range (32768 by default) down to 10000."""
    try:
        ephemeral_low = int(Path(EPHEMERAL_RANGE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    high = max(ephemeral_low, 12000)
    return max(1024, min(10000, high - 2000)), high


EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
_OUR_PORTS = _our_ports()
_handed_out: set[int] = set()
_random = random.Random()


def wait_until(
    child: Child, check: Callable[[], bool], what: str, timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Poll `check()` until it is true; `what` names it in the error."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not child.running:
            raise StartError(child, f"exited with {child.returncode} before {what}")
        if check():
            return
        if time.monotonic() > deadline:
            raise StartError(child, f"did not get {what} within {timeout_s:g} s")
        time.sleep(PROBE_EVERY_S)


async def wait_until_async(
    child: Child,
    check: Callable[[], Awaitable[bool]],
    what: str,
    timeout_s: float = READY_TIMEOUT_S,
) -> None:
    """`wait_until` for the event loop."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not child.running:
            raise StartError(child, f"exited with {child.returncode} before {what}")
        if await check():
            return
        if time.monotonic() > deadline:
            raise StartError(child, f"did not get {what} within {timeout_s:g} s")
        await asyncio.sleep(PROBE_EVERY_S)


def wait_http_ok(
    url: str, child: Child, *, timeout_s: float = READY_TIMEOUT_S, body: bytes | None = None
) -> None:
    """Until `url` answers 2xx (a GET, or a JSON POST of `body`)."""
    wait_until(child, lambda: http_ok(url, body), f"a 2xx from {url}", timeout_s)


async def wait_http_ok_async(url: str, child: Child, *, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until a GET of `url` answers 2xx, without blocking the event loop."""
    await wait_until_async(child, lambda: http_ok_async(url), f"a 2xx from {url}", timeout_s)


def wait_log_line(
    child: Child, pattern: str, *, timeout_s: float = READY_TIMEOUT_S
) -> re.Match[str]:
    """Until a line of the child's log matches `pattern` (a regex); that match."""
    wait_until(child, lambda: _search(pattern, child) is not None, repr(pattern), timeout_s)
    match = _search(pattern, child)
    assert match is not None  # the log only grows
    return match


def _search(pattern: str, child: Child) -> re.Match[str] | None:
    return re.search(pattern, child.log(), re.MULTILINE)


def http_ok(url: str, body: bytes | None = None) -> bool:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


async def http_ok_async(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    target = parts.path or "/"
    target += f"?{parts.query}" if parts.query else ""
    head = f"GET {target} HTTP/1.0\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            try:
                writer.write(head.encode())
                status_line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False
    fields = status_line.split()
    return len(fields) >= 2 and fields[1].startswith(b"2")

"""Forward one request to a rating pod and bring its answer back unchanged.

One aiohttp session for every pod, with keep-alive connections closed after 2 s idle
(before a rating pod's own 5 s keep-alive timeout, so a pooled connection is not
reused just as the pod closes it). The body and the answer are passed as bytes:
nothing is decompressed, re-encoded or followed. Hop-by-hop headers (RFC 9110,
section 7.6.1) stay on their own hop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from yarl import URL

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
CONNECT_TIMEOUT_S = 1.0
IDLE_KEEP_ALIVE_S = 2.0


class PodUnreachable(Exception):
    """No connection to the pod: nothing was sent, so another pod may take the request."""


class PodFailed(Exception):
    """The pod took the request but gave no whole answer (`timed_out`: none in time)."""

    def __init__(self, detail: str, *, timed_out: bool = False) -> None:
        super().__init__(detail)
        self.timed_out = timed_out


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str  # the path and query as the client sent them, still encoded
    headers: list[tuple[bytes, bytes]]
    body: bytes


def end_to_end(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers that travel past this hop: not hop-by-hop, nor named by `Connection`."""
    headers = list(headers)
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    return [(n, v) for n, v in headers if n.lower() not in HOP_BY_HOP and n.lower() not in named]


class Forwarder:
    def __init__(self, timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=CONNECT_TIMEOUT_S)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=IDLE_KEEP_ALIVE_S)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            )
        return self._session

    async def forward(self, pod: str, request: Request) -> Answer:
        """The pod's answer; raises PodUnreachable or PodFailed."""
        url = URL(f"http://{pod}{request.target}", encoded=True)
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in end_to_end(request.headers)
        ]
        try:
            async with self._client().request(
                request.method,
                url,
                headers=CIMultiDict(headers),
                data=request.body or None,
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                body = await response.read()
                return Answer(response.status, end_to_end(response.raw_headers), body)
        except aiohttp.ClientConnectorError as exc:
            raise PodUnreachable(f"{pod}: {exc.os_error.strerror or exc}") from None
        except aiohttp.ConnectionTimeoutError:
            raise PodUnreachable(f"{pod}: no connection within {CONNECT_TIMEOUT_S:g} s") from None
        except TimeoutError:
            raise PodFailed(f"{pod} gave no answer in time", timed_out=True) from None
        except aiohttp.ClientError as exc:
            raise PodFailed(f"{pod}: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

"""One bounded HTTP GET of a pod's bucket state, or of an activator's held requests,
over a shared keep-alive pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from yarl import URL

from scaler.bucket_state import BucketState, BucketStateError, parse_bucket_state
from scaler.held_state import HELD_PATH, HeldState, HeldStateError, parse_held_state
from scaler.pod_errors import PodError

BUCKET_PATH = "/v1/bucket"
MAX_BODY_BYTES = 64 * 1024


class PodClient:
    """Fetches `/v1/bucket` from many pods at once; every request is bounded in time and size."""

    def __init__(
        self,
        timeout_s: float,
        max_body_bytes: int = MAX_BODY_BYTES,
        token: Callable[[], bytes | None] = lambda: None,
    ) -> None:
        self._token = token
        self._urls: dict[tuple[str, int], URL] = {}
        self._timeout_s = timeout_s
        self._max_body_bytes = max_body_bytes
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=None)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),  # fetch() bounds each request
                auto_decompress=False,
            )
        return self._session

    async def fetch(self, host: str, port: int) -> BucketState:
        url = self._urls.get((host, port))
        if url is None:
            url = self._urls[host, port] = URL.build(
                scheme="http", host=host, port=port, path=BUCKET_PATH
            )
        body = await self._bounded(url, self._timeout_s, with_token=True)
        try:
            return parse_bucket_state(body)
        except BucketStateError as exc:
            raise PodError("invalid", str(exc)) from None

    async def fetch_held(
        self, host: str, port: int, *, version: int | None = None, wait_s: float = 0.0
    ) -> HeldState:
        """An activator's `/v1/held`; with `version`, a long poll that answers once the
        queue has turned active or idle since then, or after `wait_s`."""
        query = {} if version is None else {"version": str(version), "wait": f"{wait_s:g}"}
        url = URL.build(scheme="http", host=host, port=port, path=HELD_PATH, query=query)
        timeout_s = self._timeout_s + (wait_s if version is not None else 0.0)
        body = await self._bounded(url, timeout_s, with_token=False)  # the pods' token is theirs
        try:
            return parse_held_state(body)
        except HeldStateError as exc:
            raise PodError("invalid", str(exc)) from None

    async def _bounded(self, url: URL, timeout_s: float, *, with_token: bool) -> bytes:
        try:
            async with asyncio.timeout(timeout_s):
                return await self._get(url, with_token)
        except TimeoutError:
            raise PodError("timeout", f"no answer within {timeout_s:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            raise PodError("connect", str(exc.os_error or exc)) from None
        except (aiohttp.ClientError, asyncio.IncompleteReadError, OSError, ValueError) as exc:
            raise PodError("protocol", f"{type(exc).__name__}: {exc}") from None

    async def _get(self, url: URL, with_token: bool) -> bytes:
        token = self._token() if with_token else None  # visible ASCII: common.token_file checks it
        headers = {"Authorization": f"Bearer {token.decode('ascii')}"} if token else None
        async with self._client().get(url, allow_redirects=False, headers=headers) as response:
            if response.status in (401, 403):
                hint = "the pod wants a bearer token: check --pod-token-file"
                raise PodError("unauthorized", f"HTTP {response.status}: {hint}")
            if response.status != 200:
                raise PodError("http_status", f"HTTP {response.status}")
            if response.content_length is not None:
                if response.content_length > self._max_body_bytes:
                    raise PodError("too_large", f"Content-Length {response.content_length}")
                return await response.read()
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > self._max_body_bytes:
                    raise PodError("too_large", f"body over {self._max_body_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

    def forget_urls(self) -> None:
        """Drop the URLs built so far (a target was forgotten); rebuilt on the next fetch."""
        self._urls.clear()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

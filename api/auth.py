"""An optional bearer token in front of paths of the admin port.

The token lives in a file mounted from a Secret. Kubernetes updates such a file in place
(a new file behind a symlink), so the file is looked at again at most once a second, and
read again only when its modification time, inode or size changed.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import UNAUTHORIZED, send_problem

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
RECHECK_EVERY_S = 1.0


class TokenFile:
    """The current token of a file; keeps the last good one if the file turns unreadable."""

    def __init__(self, path: str, clock: Clock = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._identity: tuple[int, int, int] | None = None
        self._token = b""
        self._checked_s = float("-inf")
        self._reload()

    def token(self) -> bytes:
        now_s = self._clock()
        if now_s - self._checked_s >= RECHECK_EVERY_S:
            self._checked_s = now_s
            self._reload()
        return self._token

    def _reload(self) -> None:
        try:
            stat = os.stat(self.path)
            identity = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
            if identity == self._identity:
                return
            token = _read(self.path)
        except OSError as exc:
            logger.warning("admin token file: keeping the last token: %s", exc)
            return
        if not token:
            logger.warning("admin token file %s is empty: keeping the last token", self.path)
            return
        self._identity, self._token = identity, token


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read(64 * 1024).strip()


def bearer_token(scope: Scope) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, if there is one."""
    value: bytes
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer":
                return token.strip()
            return None
    return None


class BearerAuth:
    """Answers 401 to requests for `paths` that lack the token of `token_file`."""

    def __init__(self, app: ASGIApp, token_file: TokenFile, paths: frozenset[str]) -> None:
        self.app = app
        self.token_file = token_file
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths and not self._allows(scope):
            await _send_unauthorized(send)
            return
        await self.app(scope, receive, send)

    def _allows(self, scope: Scope) -> bool:
        given = bearer_token(scope)
        # compare_digest takes as long whatever the first differing byte: no timing oracle.
        return given is not None and hmac.compare_digest(given, self.token_file.token())


async def _send_unauthorized(send: Send) -> None:
    headers = [
        (b"www-authenticate", b'Bearer realm="rating-api-admin"'),
        (b"cache-control", b"no-store"),
    ]
    detail = "this path needs an Authorization: Bearer token"
    await send_problem(send, UNAUTHORIZED, detail, headers)

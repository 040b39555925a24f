"""An optional bearer token in front of paths of the admin port.

The token lives in a file mounted from a Secret, read and re-read by
`common.token_file.TokenFile` under the same rules as the token the scaler sends.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import UNAUTHORIZED, send_problem
from common.token_file import TokenFile


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
        given, expected = bearer_token(scope), self.token_file()
        # No token read yet lets nobody in, an empty `Bearer ` included; compare_digest
        # takes as long whatever the first differing byte: no timing oracle.
        return given is not None and bool(expected) and hmac.compare_digest(given, expected)


async def _send_unauthorized(send: Send) -> None:
    headers = [
        (b"www-authenticate", b'Bearer realm="rating-api-admin"'),
        (b"cache-control", b"no-store"),
    ]
    detail = "this path needs an Authorization: Bearer token"
    await send_problem(send, UNAUTHORIZED, detail, headers)

"""A bearer token kept in a file mounted from a Secret, re-read when the file changes.

One set of rules for the token rating-api requires on its admin port
(`--admin-token-file`) and the token the scaler sends to the pods (`--pod-token-file`):

- The token is the file's text without the whitespace around it (a file made with
  `kubectl create secret --from-file` often ends in a newline). It is visible ASCII
  without spaces, so that it goes into `Authorization: Bearer <token>` unchanged, and
  the file is at most 64 KiB.
- At start-up a file that cannot be read, is empty or holds no such token stops the
  process with a message that names the flag (`read_token`).
- Kubernetes updates a Secret's file in place (a new file behind a symlink), so the
  file is looked at again at most once a second, and read again only when its
  modification time, inode or size changed.
- A file that later turns unreadable, empty or invalid keeps the last good token (a
  Secret being swapped), with a warning.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
StrPath = str | os.PathLike[str]
RECHECK_EVERY_S = 1.0
MAX_FILE_BYTES = 64 * 1024
_TOKEN = re.compile(rb"[\x21-\x7e]+")


class TokenFileError(ValueError):
    """The file holds no usable token; the message says why, the caller names the flag."""


def read_token(path: StrPath) -> bytes:
    """The token in the file at `path`; `TokenFileError` says what is wrong with it."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise TokenFileError(f"cannot be read: {exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise TokenFileError(f"{os.fspath(path)} is larger than {MAX_FILE_BYTES} bytes")
    token = data.strip()
    if not token:
        raise TokenFileError(f"{os.fspath(path)} is empty")
    if not _TOKEN.fullmatch(token):
        raise TokenFileError(
            f"{os.fspath(path)} holds no bearer token: visible ASCII only, without spaces"
        )
    return token


class TokenFile:
    """Calling it gives the file's current token; b"" until one was read."""

    def __init__(self, path: StrPath, clock: Clock = time.monotonic) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self._identity: tuple[int, int, int] | None = None
        self._token = b""
        self._checked_s = float("-inf")
        self._problem = ""
        self._reload()

    def __call__(self) -> bytes:
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
            token = read_token(self.path)
        except (OSError, TokenFileError) as exc:
            self._keep_last(str(exc))
            return
        self._identity, self._token, self._problem = identity, token, ""

    def _keep_last(self, problem: str) -> None:
        """Warn once per problem, not at every look while it lasts."""
        if problem != self._problem:
            logger.warning("token file %s: keeping the last token: %s", self.path, problem)
            self._problem = problem

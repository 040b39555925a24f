"""What the poller needs from a pod client: one fetch of a pod's bucket, or a PodError."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from scaler.bucket_state import BucketState

PodErrorReason = Literal[
    "timeout", "connect", "unauthorized", "http_status", "too_large", "invalid", "protocol"
]
POD_ERROR_REASONS: tuple[PodErrorReason, ...] = (
    "timeout",
    "connect",
    "unauthorized",
    "http_status",
    "too_large",
    "invalid",
    "protocol",
)

Fetch = Callable[[str, int], Awaitable[BucketState]]
"""GET one pod's `/v1/bucket` at (host, port); raises PodError when there is no usable answer."""


class PodError(Exception):
    """A pod did not give a usable answer; `reason` labels the pod error metric."""

    def __init__(self, reason: PodErrorReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: PodErrorReason = reason
        self.detail = detail

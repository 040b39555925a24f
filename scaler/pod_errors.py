"""`PodError`: why one poll of one pod gave no usable bucket state, by reason.

The pod client raises it; the poller records it; the metrics count it by `reason`.
This module imports nothing from the project.
"""

from __future__ import annotations

from typing import Literal

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


class PodError(Exception):
    """A pod did not give a usable answer; `reason` labels the pod error metric."""

    def __init__(self, reason: PodErrorReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: PodErrorReason = reason
        self.detail = detail

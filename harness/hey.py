"""`hey`, the HTTP load tool (Debian's package), as the soak and the benchmarks run it.

`hey -z D -c C -q Q` runs C workers for D, each sending at most Q requests per second,
one at a time: what it offers is at most C x Q per second, whatever the server does,
and it stops by itself. Its summary gives the status code distribution and the
client-side errors (refused or reset connections, timeouts), read by `parse_hey`.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import dataclass, field

_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses", re.MULTILINE)
_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.MULTILINE)


def require_hey() -> None:
    """Fail with what to do when `hey` is not on PATH."""
    if shutil.which("hey") is None:
        raise RuntimeError("hey is not installed: `make system-deps` installs it")


def hey_argv(
    url: str,
    *,
    duration_s: float,
    workers: int,
    per_worker_per_s: float,
    body: str,
    timeout_s: float | None = None,
) -> list[str]:
    """`hey` POSTing the JSON `body` to `url` for `duration_s` at most
    `workers` x `per_worker_per_s` requests per second; `timeout_s` per request
    (hey's default, 20 s, when None)."""
    timeout = [] if timeout_s is None else ["-t", f"{timeout_s:g}"]
    return [
        "hey", "-z", f"{round(duration_s, 3):g}s", "-c", str(workers),
        "-q", f"{per_worker_per_s:g}", *timeout,
        "-m", "POST", "-T", "application/json", "-d", body, url,
    ]  # fmt: skip


@dataclass(slots=True)
class HeyResult:
    """What one `hey` saw of one pod."""

    pod: int
    exit_code: int | None
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def count(self, low: int, high: int) -> int:
        return sum(n for code, n in self.statuses.items() if low <= code <= high)

    @property
    def server_errors(self) -> int:
        return self.count(500, 599)

    @property
    def client_errors(self) -> int:
        return sum(self.errors.values())


def parse_hey(pod: int, text: str, exit_code: int | None) -> HeyResult:
    """The status and error distributions of hey's summary."""
    result = HeyResult(pod, exit_code)
    statuses, _, errors = text.partition("Error distribution:")
    for code, count in _STATUS.findall(statuses.partition("Status code distribution:")[2]):
        result.statuses[int(code)] += int(count)
    for count, message in _ERROR.findall(errors):
        result.errors[_error_kind(message)] += int(count)
    return result


def _error_kind(message: str) -> str:
    for kind in ("connection refused", "connection reset", "EOF", "Timeout", "timeout"):
        if kind in message:
            return kind.lower()
    return message.strip()[-60:]

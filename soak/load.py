"""Real HTTP load: one `hey` per pod at a fixed rate, bounded by its own `-z` duration.

`hey -c C -q Q` runs C workers, each sending at most Q requests per second, one at a
time; what is offered to a pod is therefore at most C x Q per second, whatever the pod
does. Its summary gives the status code distribution and the client-side errors
(refused or reset connections while a pod is down, timeouts while it is frozen).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness import Child, spawn
from soak.cluster import Pod
from soak.settings import Settings

BODY = '{"items":[{"id":"soak-item","up":42,"down":7}]}'
REQUEST_TIMEOUT_S = 10
_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses", re.MULTILINE)
_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.MULTILINE)


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


def hey_argv(settings: Settings, url: str, duration_s: float) -> list[str]:
    """`hey` offering `settings.offered_per_pod` requests per second to `url`."""
    return [
        "hey", "-z", f"{duration_s:.1f}s", "-c", str(settings.workers_per_pod),
        "-q", f"{settings.offered_per_worker:g}", "-t", str(REQUEST_TIMEOUT_S),
        "-m", "POST", "-T", "application/json", "-d", BODY, url,
    ]  # fmt: skip


class Load:
    """One `hey` process per pod, all started at once."""

    def __init__(self, pods: list[Pod], settings: Settings, log_dir: Path) -> None:
        if shutil.which("hey") is None:
            raise RuntimeError("hey is not installed: `make system-deps` installs it")
        self._pods = pods
        self._settings = settings
        self._log_dir = log_dir
        self._children: list[Child] = []

    def start(self, duration_s: float) -> None:
        for pod in self._pods:
            argv = hey_argv(self._settings, pod.api.rate_url, duration_s)
            log_path = self._log_dir / f"hey-{pod.index}.txt"
            self._children.append(spawn(f"hey-{pod.index}", argv, log_path))

    def finish(self, timeout_s: float) -> list[HeyResult]:
        """Wait for every `hey` to end by itself (killed after `timeout_s`), then parse."""
        results = []
        for pod, child in zip(self._pods, self._children, strict=True):
            try:
                code: int | None = child.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                child.kill()
                code = None
            results.append(parse_hey(pod.index, child.log(), code))
        return results

    def kill(self) -> None:
        for child in self._children:
            child.kill()

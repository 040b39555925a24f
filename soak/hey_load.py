"""The soak's load: one `hey` per pod at a fixed rate, bounded by its own `-z` duration
(`harness.hey`). What each saw (refused or reset connections while a pod is down,
timeouts while it is frozen) goes to the checks as a `HeyResult`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import Child, spawn
from harness.hey import HeyResult, hey_argv, parse_hey, require_hey
from soak.settings import Settings
from soak.under_test import Pod

BODY = '{"items":[{"id":"soak-item","up":42,"down":7}]}'
REQUEST_TIMEOUT_S = 10


def pod_hey_argv(settings: Settings, url: str, duration_s: float) -> list[str]:
    """`hey` offering `settings.offered_per_pod` requests per second to `url`."""
    return hey_argv(
        url,
        duration_s=duration_s,
        workers=settings.workers_per_pod,
        per_worker_per_s=settings.offered_per_worker,
        body=BODY,
        timeout_s=REQUEST_TIMEOUT_S,
    )


class Load:
    """One `hey` process per pod, all started at once."""

    def __init__(self, pods: list[Pod], settings: Settings, log_dir: Path) -> None:
        require_hey()
        self._pods = pods
        self._settings = settings
        self._log_dir = log_dir
        self._children: list[Child] = []

    def start(self, duration_s: float) -> None:
        for pod in self._pods:
            argv = pod_hey_argv(self._settings, pod.api.rate_url, duration_s)
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

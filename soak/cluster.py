"""The processes under test: rating pods and the scaler, started, stopped and hurt for real.

Every change of a pod's state is written to a `Timeline`, so the checks can later tell
whether a pod was surely serving while the scaler said something.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp

from soak.settings import HOST, Settings

ROOT = Path(__file__).resolve().parent.parent
State = Literal["down", "up", "stopped"]
Clock = Callable[[], float]  # seconds since the run started
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


async def pause(seconds: float, clock: Clock, until: float) -> None:
    """Sleep `seconds`, but never past `until`: loops that check `until` end on time."""
    await asyncio.sleep(max(0.0, min(seconds, until - clock())))


class StartError(RuntimeError):
    """A process did not become ready in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class Timeline:
    """Each pod's states over time: (seconds, state), in order, from `down` at 0."""

    transitions: dict[int, list[tuple[float, State]]] = field(default_factory=dict)

    def mark(self, pod: int, state: State, at: float) -> None:
        self.transitions.setdefault(pod, []).append((at, state))

    def state_at(self, pod: int, at: float) -> State:
        marks = self.transitions.get(pod, [])
        index = bisect.bisect_right(marks, at, key=lambda mark: mark[0])
        return marks[index - 1][1] if index else "down"

    def up_throughout(self, pod: int, start: float, end: float) -> bool:
        """True when the pod was serving, unfrozen, over all of [start, end]."""
        if self.state_at(pod, start) != "up":
            return False
        marks = self.transitions.get(pod, [])
        first = bisect.bisect_right(marks, start, key=lambda mark: mark[0])
        last = bisect.bisect_right(marks, end, key=lambda mark: mark[0])
        return all(state == "up" for _, state in marks[first:last])

    def away_throughout(self, pod: int, start: float, end: float) -> bool:
        """True when the pod was down or frozen over all of [start, end]."""
        if self.state_at(pod, start) == "up":
            return False
        marks = self.transitions.get(pod, [])
        first = bisect.bisect_right(marks, start, key=lambda mark: mark[0])
        last = bisect.bisect_right(marks, end, key=lambda mark: mark[0])
        return all(state != "up" for _, state in marks[first:last])


@dataclass(slots=True)
class Child:
    """One process of ours, with a log file per start."""

    name: str
    argv: list[str]
    log_dir: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def spawn(self) -> None:
        self.starts += 1
        log_path = self.log_dir / f"{self.name}-{self.starts}.log"
        self.logs.append(log_path)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log_path.open("wb") as log_file:
            self.popen = subprocess.Popen(
                self.argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT, env=env
            )

    def signal(self, signum: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signum)

    async def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code, or None if it still runs after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self.popen is not None and self.popen.poll() is None:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.02)
        return self.popen.returncode if self.popen is not None else None

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGCONT (it may be frozen), SIGTERM, then SIGKILL if it would not go."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        code = await self.wait_exit(timeout_s)
        if code is None:
            self.signal(signal.SIGKILL)
            await self.wait_exit(5.0)
        return code

    def log_text(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.logs if path.exists())


class Pod:
    """A `rating-api` process that keeps its ports across restarts."""

    def __init__(self, index: int, settings: Settings, log_dir: Path, clock: Clock) -> None:
        self.index = index
        self.name = f"rating-api-{index}"
        self.port = free_port()
        self.admin_port = free_port()
        argv = [
            sys.executable, "-m", "api", "--host", HOST,
            "--port", str(self.port), "--admin-port", str(self.admin_port),
            "--pod-name", self.name,
            "--bucket-capacity", f"{settings.bucket_capacity:g}",
            "--bucket-rate", f"{settings.bucket_rate:g}",
            "--log-level", "warning",
        ]  # fmt: skip
        self.child = Child(self.name, argv, log_dir)
        self._clock = clock

    @property
    def admin_address(self) -> str:
        return f"{HOST}:{self.admin_port}"

    @property
    def rate_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1/rate"

    async def start(self, http: aiohttp.ClientSession, timeline: Timeline) -> float:
        """Start, wait until `/readyz` answers 200; returns (and marks) that moment."""
        self.child.spawn()
        await wait_ok(http, f"http://{HOST}:{self.port}/readyz", self.child)
        ready_at = self._clock()
        timeline.mark(self.index, "up", ready_at)
        return ready_at

    def kill(self, timeline: Timeline) -> None:
        timeline.mark(self.index, "down", self._clock())
        self.child.signal(signal.SIGKILL)

    async def terminate(self, timeline: Timeline) -> None:
        """SIGTERM and wait for the exit (drain included)."""
        timeline.mark(self.index, "down", self._clock())
        await self.child.stop()

    def freeze(self, timeline: Timeline) -> None:
        timeline.mark(self.index, "stopped", self._clock())
        self.child.signal(signal.SIGSTOP)

    def thaw(self, timeline: Timeline) -> float:
        self.child.signal(signal.SIGCONT)
        at = self._clock()
        timeline.mark(self.index, "up", at)
        return at


class Scaler:
    """The `rating-scaler` process."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.grpc_port = free_port()
        self.http_port = free_port()
        argv = [
            sys.executable, "-m", "scaler", "--host", HOST,
            "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
            "--poll-interval", f"{settings.poll_interval_s:g}",
            "--pod-timeout", f"{settings.pod_timeout_s:g}",
            *settings.extra_scaler_args,
        ]  # fmt: skip
        self.child = Child("rating-scaler", argv, log_dir)

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.http_port}{path}"

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.child.spawn()
        await wait_ok(http, self.url("/healthz"), self.child)


class Cluster:
    """The scaler and the pods of one run; `close` leaves nothing running."""

    def __init__(self, settings: Settings, log_dir: Path, clock: Clock) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.timeline = Timeline()
        self.scaler = Scaler(settings, log_dir)
        self.pods = [Pod(index, settings, log_dir, clock) for index in range(settings.pods)]

    @property
    def children(self) -> list[Child]:
        return [self.scaler.child, *(pod.child for pod in self.pods)]

    async def start(self, http: aiohttp.ClientSession) -> None:
        await asyncio.gather(
            self.scaler.start(http), *(pod.start(http, self.timeline) for pod in self.pods)
        )

    async def close(self) -> int | None:
        """Stop the pods, then the scaler; returns the scaler's exit code."""
        await asyncio.gather(*(pod.child.stop() for pod in self.pods))
        return await self.scaler.child.stop()

    def admin_addresses(self, indexes: Sequence[int]) -> str:
        return ",".join(self.pods[index].admin_address for index in indexes)


async def wait_ok(http: aiohttp.ClientSession, url: str, child: Child) -> None:
    """Poll `url` until it answers 2xx; fail if the process exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    timeout = aiohttp.ClientTimeout(total=1.0)
    while time.monotonic() < deadline:
        if not child.running:
            raise StartError(f"{child.name} exited before {url} answered:\n{child.log_text()}")
        try:
            async with http.get(url, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.02)
    raise StartError(f"{url} did not answer 2xx within {START_TIMEOUT_S:g} s")

"""Paced load through a client-side balancer: requests go round-robin over the ready
addresses of a Service's EndpointSlices (as a mesh sidecar or a gRPC client would;
no kube-proxy runs here). Bounded in time; counts outcomes per second.

Connections are kept alive and pooled per pod, as a real client does. A pod that
answers with `Connection: close` (rating-api does during its shutdown delay) has that
connection closed after the answer, and the next request opens a new one. A request
sent that gets no answer at all (the connection reset, or closed before the answer)
counts as `lost`: what a client sees when a pod goes away under it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from e2e.cluster.cluster_dns import Endpoints

BODY = b'{"items":[{"id":"agent-planner","up":42,"down":7}]}'
REQUEST_TIMEOUT_S = 2.0
MAX_IN_FLIGHT = 256
# A pooled connection left idle this long is closed by the client: below rating-api's
# --keep-alive-timeout (5 s), as any client or proxy in front of it should be, or the
# server's close of an idle connection can cross a request sent on it, which is then
# lost (the race every HTTP/1.1 keep-alive has; aiohttp's default is 15 s).
CLIENT_IDLE_S = 4.0


def lagging(
    endpoints: Endpoints, lag_s: float, clock: Callable[[], float] = time.monotonic
) -> Endpoints:
    """`endpoints` as a balancer that learns of each change `lag_s` late sees them (as
    kube-proxy or an ingress does, while this client alone would see it at once): the
    latest list read at least `lag_s` ago, or the first one while none is that old."""
    seen: deque[tuple[float, Sequence[tuple[str, int]]]] = deque()

    def read() -> Sequence[tuple[str, int]]:
        now = clock()
        seen.append((now, endpoints()))
        while len(seen) > 1 and seen[1][0] <= now - lag_s:
            seen.popleft()
        return seen[0][1]

    return read


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float
    end_s: float
    rate_per_s: float


def burst(duration_s: float, step_per_s: float) -> list[Phase]:
    """As `make demo`: idle for 1/8 of the time, the step for 5/8, idle again."""
    start_s, end_s = duration_s / 8, duration_s / 8 + duration_s * 5 / 8
    return [
        Phase("idle", 0.0, start_s, 0.0),
        Phase("step", start_s, end_s, step_per_s),
        Phase("down", end_s, duration_s, 0.0),
    ]


@dataclass
class Tally:
    """Answers per whole second since the start: (second, outcome) -> count."""

    counts: Counter[tuple[int, str]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)  # every HTTP status answered
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, second: int, outcome: str, status: int | None = None) -> None:
        with self.lock:
            self.counts[(second, outcome)] += 1
            if status is not None:
                self.statuses[status] += 1

    def server_errors(self) -> int:
        """Answers with a 5xx status."""
        with self.lock:
            return sum(n for status, n in self.statuses.items() if status >= 500)

    def second(self, second: int) -> dict[str, int]:
        with self.lock:
            return {o: n for (s, o), n in self.counts.items() if s == second}

    def total(self, outcome: str) -> int:
        with self.lock:
            return sum(n for (_, o), n in self.counts.items() if o == outcome)

    def totals(self) -> dict[str, int]:
        found: Counter[str] = Counter()
        with self.lock:
            for (_, outcome), n in self.counts.items():
                found[outcome] += n
        return dict(found)


def outcome_of(status: int) -> str:
    if status == 429:
        return "refused"
    return "answered" if 200 <= status < 300 else "error"


def outcome_of_failure(error: BaseException) -> str:
    """`unreachable`: no connection, so nothing was sent; `timeout`: no answer in time;
    `lost`: sent, then the connection was reset or closed with no answer."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return "unreachable"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "lost"
    if isinstance(error, aiohttp.ClientOSError | ConnectionError):
        return "lost"
    return "error"


def offered_per_s(phases: Sequence[Phase], elapsed_s: float) -> float:
    """The rate the load is offering `elapsed_s` after its start (0 outside its phases)."""
    for phase in phases:
        if phase.start_s <= elapsed_s < phase.end_s:
            return phase.rate_per_s
    return 0.0


class Load:
    """Sends `phases` at `endpoints()` from a thread of its own, from `started_s`."""

    def __init__(self, endpoints: Endpoints, phases: Sequence[Phase], started_s: float) -> None:
        self.endpoints, self.phases, self.started_s = endpoints, list(phases), started_s
        self.tally = Tally()
        self.thread = threading.Thread(target=lambda: asyncio.run(self.main()), daemon=True)
        self._turn = 0
        self._stopping = threading.Event()

    def start(self) -> Load:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Send nothing more, and wait for the answers in flight (a phase of load cut short;
        an idle phase still runs its course in the background)."""
        self._stopping.set()
        self.thread.join(timeout=REQUEST_TIMEOUT_S + 2)

    def pick(self) -> tuple[str, int] | None:
        ready = self.endpoints()
        if not ready:
            return None
        self._turn += 1
        return ready[self._turn % len(ready)]

    async def one(self, session: aiohttp.ClientSession, second: int) -> None:
        target = self.pick()
        if target is None:
            self.tally.add(second, "no-endpoint")
            return
        url = f"http://{target[0]}:{target[1]}/v1/rate"
        headers = {"Content-Type": "application/json"}
        try:
            async with session.post(url, data=BODY, headers=headers) as response:
                await response.read()
                self.tally.add(second, outcome_of(response.status), response.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            self.tally.add(second, outcome_of_failure(error))

    def offered_per_s(self) -> float:
        return offered_per_s(self.phases, time.monotonic() - self.started_s)

    async def main(self) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT, keepalive_timeout=CLIENT_IDLE_S)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            tasks: set[asyncio.Task[None]] = set()
            for phase in self.phases:
                await self.send_phase(session, phase, tasks)
            if tasks:
                await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + 1)

    async def send_phase(
        self, session: aiohttp.ClientSession, phase: Phase, tasks: set[asyncio.Task[None]]
    ) -> None:
        if phase.rate_per_s <= 0:
            await asyncio.sleep(max(0.0, self.started_s + phase.end_s - time.monotonic()))
            return
        gap_s = 1.0 / phase.rate_per_s
        sent = 0
        while not self._stopping.is_set():
            due_s = self.started_s + phase.start_s + sent * gap_s
            if due_s >= self.started_s + phase.end_s:
                return
            await asyncio.sleep(max(0.0, due_s - time.monotonic()))
            second = int(due_s - self.started_s)
            task = asyncio.create_task(self.one(session, second))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1

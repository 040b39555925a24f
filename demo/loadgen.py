"""`python -m demo.loadgen PLAN.json`: the demo's load generator, a process of its own.

Sends every fleet the plan's requests of each second (`POST /v1/rate`, evenly spaced
within the second, the same instants for every fleet), each to the next ready pod of
that fleet in turn, as kube-proxy's round robin does, over keep-alive HTTP/1.1
connections. It follows each fleet's ready pods from a JSON file the demo rewrites
(`{"pods": ["127.0.0.1:port", ...]}`, read again whenever it changes).

It measures what it sent and what came back: for each fleet and second, once every
request sent in that second has an outcome, one JSON line in the report file
(`sent`, `ok`, `r429`, `errors`: no answer, or an answer other than 200 and 429,
`lost`: of those, requests written to a pod whose connection then ended, EOF or reset,
before any response, `p99_ms` of the answered requests, `late`: how many went out more
than 1 s after their instant, `lag_ms`: the latest), and a last line
`{"done": true, ...}` with the totals. It asks for a slightly higher CPU priority
(nice -5) when it may, as clients on other machines would not wait behind pods
starting on this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from demo.series import p99

READY_CHECK_S = 0.05
REPORT_EVERY_S = 0.1
IDLE_REUSE_S = 2.0  # below the pods' 5 s keep-alive: never reuse what they may close
LATE_AFTER_S = 1.0
NICE = -5


@dataclass(frozen=True)
class Plan:
    start_monotonic: float
    planned: list[int]
    ready_files: dict[str, Path]
    report: Path
    timeout_s: float
    body: bytes

    @classmethod
    def load(cls, path: Path) -> Plan:
        raw: dict[str, Any] = json.loads(path.read_text())
        return cls(
            start_monotonic=float(raw["start_monotonic"]),
            planned=[int(n) for n in raw["planned"]],
            ready_files={name: Path(p) for name, p in raw["ready_files"].items()},
            report=Path(raw["report"]),
            timeout_s=float(raw["timeout_s"]),
            body=str(raw["body"]).encode(),
        )


@dataclass
class Second:
    sent: int = 0
    ok: int = 0
    r429: int = 0
    errors: int = 0
    lost: int = 0
    late: int = 0
    lag_ms: float = 0.0
    in_flight: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def line(self, fleet: str, t_s: int, planned: int) -> dict[str, object]:
        return {
            "fleet": fleet, "t_s": t_s, "planned": planned, "sent": self.sent, "ok": self.ok,
            "r429": self.r429, "errors": self.errors, "lost": self.lost, "late": self.late,
            "p99_ms": _rounded(p99(self.latencies_ms)), "lag_ms": round(self.lag_ms, 1),
        }  # fmt: skip


class NoAnswer(ConnectionError):
    """The request was written, and the connection ended (EOF, reset) before any response."""


class Pod:
    """Keep-alive connections to one pod's public port."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def post(self, request: bytes) -> int:
        """The answer's status code; one retry on a fresh connection when a reused one
        turns out closed before any answer (the pod closed it while it was idle), as Go's
        HTTP client retries a request on a connection the server closed while idle."""
        reused = self._take_idle()
        if reused is not None:
            try:
                return await self._exchange(*reused, request)
            except NoAnswer:
                pass
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(reader, writer, request)

    def _take_idle(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        now = time.monotonic()
        while self.idle:
            reader, writer, since = self.idle.pop()
            if now - since < IDLE_REUSE_S and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> int:
        try:
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise NoAnswer(f"{type(exc).__name__} before any response") from exc
            status, length, keep = parse_head(head)
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if keep:
            self.idle.append((reader, writer, time.monotonic()))
        else:
            writer.close()
        return status

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, content length, keep-alive) from a response head."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if "content-length" not in headers:
        raise ValueError("an answer without content-length")
    return status, int(headers["content-length"]), headers.get("connection") != "close"


class Fleet:
    """One fleet's ready pods, its seconds, and its round robin."""

    def __init__(self, name: str, ready_file: Path, seconds: int) -> None:
        self.name = name
        self.ready_file = ready_file
        self.seconds = [Second() for _ in range(seconds)]
        self.pods: dict[str, Pod] = {}
        self.order: list[str] = []
        self._next = 0
        self._mtime_ns = -1
        self.tasks: set[asyncio.Task[None]] = set()

    def refresh(self) -> None:
        """Read the ready file again if it changed."""
        with contextlib.suppress(FileNotFoundError):
            mtime_ns = self.ready_file.stat().st_mtime_ns
            if mtime_ns != self._mtime_ns:
                self._mtime_ns = mtime_ns
                self.order = list(json.loads(self.ready_file.read_text())["pods"])
                for gone in self.pods.keys() - set(self.order):
                    self.pods.pop(gone).close()

    def pick(self) -> Pod | None:
        if not self.order:
            return None
        address = self.order[self._next % len(self.order)]
        self._next += 1
        if address not in self.pods:
            self.pods[address] = Pod(address)
        return self.pods[address]

    def fire(self, second: int, request: bytes, timeout_s: float) -> None:
        bucket = self.seconds[second]
        bucket.sent += 1
        pod = self.pick()
        if pod is None:
            bucket.errors += 1
            return
        bucket.in_flight += 1
        task = asyncio.create_task(self._send(bucket, pod, request, timeout_s))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, bucket: Second, pod: Pod, request: bytes, timeout_s: float) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                status = await pod.post(request)
        except NoAnswer:
            bucket.errors += 1
            bucket.lost += 1
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, IndexError):  # fmt: skip
            bucket.errors += 1
        else:
            bucket.latencies_ms.append((time.monotonic() - started) * 1000)
            if status == 200:
                bucket.ok += 1
            elif status == 429:
                bucket.r429 += 1
            else:
                bucket.errors += 1
        finally:
            bucket.in_flight -= 1


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def request_bytes(body: bytes) -> bytes:
    head = (
        "POST /v1/rate HTTP/1.1\r\nHost: rating-api\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def follow_ready(fleets: Sequence[Fleet]) -> None:
    while True:
        for fleet in fleets:
            fleet.refresh()
        await asyncio.sleep(READY_CHECK_S)


async def send_plan(plan: Plan, fleets: Sequence[Fleet]) -> None:
    """Every planned request at its instant; late ones go out at once, in order."""
    request = request_bytes(plan.body)
    for second, count in enumerate(plan.planned):
        for index in range(count):
            at = plan.start_monotonic + second + index / count
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            sent_in = min(len(plan.planned) - 1, max(second, int(now - plan.start_monotonic)))
            for fleet in fleets:
                bucket = fleet.seconds[sent_in]
                bucket.lag_ms = max(bucket.lag_ms, (now - at) * 1000)
                bucket.late += now - at > LATE_AFTER_S
                fleet.fire(sent_in, request, plan.timeout_s)


async def report(
    plan: Plan, fleets: Sequence[Fleet], out: IO[str], sending: asyncio.Task[None]
) -> None:
    """Write each second of each fleet once it is over and has no request in flight."""
    written = 0
    while written < len(plan.planned):
        now_s = time.monotonic() - plan.start_monotonic
        # the last second also takes the sends that ran late past the plan's end
        last = written == len(plan.planned) - 1
        over = sending.done() or (not last and now_s >= written + 1)
        if over and all(fleet.seconds[written].in_flight == 0 for fleet in fleets):
            for fleet in fleets:
                line = fleet.seconds[written].line(fleet.name, written, plan.planned[written])
                out.write(json.dumps(line) + "\n")
            out.flush()
            written += 1
            continue
        await asyncio.sleep(REPORT_EVERY_S)


async def run(plan: Plan) -> dict[str, object]:
    fleets = [Fleet(name, path, len(plan.planned)) for name, path in plan.ready_files.items()]
    for fleet in fleets:
        fleet.refresh()
    follower = asyncio.create_task(follow_ready(fleets))
    with plan.report.open("w") as out:
        sending = asyncio.create_task(send_plan(plan, fleets))
        await report(plan, fleets, out, sending)
        await sending
        follower.cancel()
        totals = {
            "done": True,
            "planned": sum(plan.planned),
            "sent": {f.name: sum(s.sent for s in f.seconds) for f in fleets},
            "lost": {f.name: sum(s.lost for s in f.seconds) for f in fleets},
            "max_lag_ms": max(s.lag_ms for f in fleets for s in f.seconds),
        }
        out.write(json.dumps(totals) + "\n")
    for fleet in fleets:
        for pod in fleet.pods.values():
            pod.close()
    return totals


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m demo.loadgen PLAN.json", file=sys.stderr)
        return 2
    plan = Plan.load(Path(args[0]))
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        totals = runner.run(run(plan))
    print(json.dumps(totals), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

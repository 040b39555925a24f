"""Light stand-ins for rating pods' admin port: real HTTP servers on 127.0.0.1.

Each answers `GET /v1/bucket` with a bucket state whose counters grow at a chosen
demand, or misbehaves on purpose (hangs, garbage, an endless body, HTTP 500). They
are plain asyncio servers so that a thousand of them fit in one process.
`python -m harness.fakepods --count N` serves N of them and prints their ports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import orjson

from api.bucket_schema import SCHEMA

Behaviour = Literal["ok", "hang", "garbage", "endless", "error", "huge", "absurd"]


@dataclass
class Concurrency:
    """Requests received and not yet answered, counted across every pod that shares it."""

    now: int = 0
    peak: int = 0

    def enter(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        self.now -= 1


@dataclass
class FakePod:
    demand_per_s: float = 0.0
    behaviour: Behaviour = "ok"
    capacity: float = 100.0
    refill_per_s: float = 50.0
    name: str = field(default_factory=lambda: f"fake-{uuid.uuid4().hex[:6]}")
    port: int = 0
    required_token: str | None = None
    requests: int = 0
    delay_s: float = 0.0  # each answer waits this long first (a slow pod)
    answering: Concurrency = field(default_factory=Concurrency)  # share one to count many
    up_before_s: float = 3600.0  # how long it had been up when made: a fleet's pods are not new
    _boot_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _booted_at: float = field(default_factory=time.monotonic)
    _requested_total: float = 0.0
    _restarts: int = 0
    _last_change: float = field(default_factory=time.monotonic)
    _server: asyncio.Server | None = None
    _connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = field(default_factory=dict)

    def set_demand(self, demand_per_s: float) -> None:
        self._requested_total = self._requested_now()
        self._last_change = time.monotonic()
        self.demand_per_s = demand_per_s

    def restart(self) -> None:
        """A new boot: counters and uptime start again from zero."""
        self._boot_id, self._booted_at = uuid.uuid4().hex, time.monotonic()
        self._requested_total, self._last_change = 0.0, self._booted_at
        self._restarts += 1

    def _up_before(self) -> float:
        """Uptime before `_booted_at`: the first boot's offset; a restart starts at 0."""
        return self.up_before_s if self._restarts == 0 else 0.0

    def _requested_now(self) -> float:
        return self._requested_total + self.demand_per_s * (time.monotonic() - self._last_change)

    def body(self) -> bytes:
        requested = self._requested_now()
        return orjson.dumps(
            {
                "schema": SCHEMA,
                "pod": self.name,
                "boot_id": self._boot_id,
                "uptime_s": time.monotonic() - self._booted_at + self._up_before(),
                "capacity": self.capacity,
                "refill_per_s": self.refill_per_s,
                "tokens": self.capacity / 2,
                "granted_total": requested,
                "denied_total": 0,
            }
        )

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer, task in list(self._connections.items()):  # like a killed pod
                writer.close()
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                if not self._authorized(head):
                    writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                    continue
                await self._wait(reader)
                if not await self._answer(writer):
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except asyncio.CancelledError:
            return
        finally:
            self._connections.pop(writer, None)
            writer.close()

    async def _wait(self, reader: asyncio.StreamReader) -> None:
        """The pod thinks for `delay_s`; counted as answering until its answer starts (so
        that a client never has an answer from a request still counted) or until the
        client hangs up (a request it gave up on is no longer in flight)."""
        self.answering.enter()
        try:
            if self.delay_s:
                hang_up = asyncio.ensure_future(reader.read(1))  # clients send nothing more
                done, _ = await asyncio.wait({hang_up}, timeout=self.delay_s)
                hang_up.cancel()
                if done:
                    raise ConnectionResetError("the client went away")
        finally:
            self.answering.leave()

    def _authorized(self, head: bytes) -> bool:
        if self.required_token is None:
            return True
        expected = f"authorization: bearer {self.required_token}\r\n".encode()
        return expected in head.lower()

    async def _answer(self, writer: asyncio.StreamWriter) -> bool:
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        if self.behaviour == "endless":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{")
            while True:
                writer.write(b'"x":' * 4096)
                await writer.drain()
        answers: dict[str, tuple[bytes, Callable[[], bytes]]] = {
            "ok": (b"200 OK", lambda: self.body()),
            "garbage": (b"200 OK", lambda: b"\x00\xffnot json at all"),
            "error": (b"500 Internal Server Error", lambda: b"{}"),
            "huge": (b"200 OK", lambda: b" " * 200_000 + self.body()),
            "absurd": (
                b"200 OK",
                lambda: self.body().replace(b'"capacity":100.0', b'"capacity":1e308'),
            ),
        }
        status, body = answers[self.behaviour]
        payload = body()
        head = f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        writer.write(b"HTTP/1.1 " + status + b"\r\n" + head.encode() + payload)
        await writer.drain()
        return True


async def serve_many(count: int, demand_per_s: float) -> list[FakePod]:
    pods = [FakePod(demand_per_s=demand_per_s) for _ in range(count)]
    for pod in pods:
        await pod.start()
    return pods


async def _main(count: int, demand_per_s: float, seconds: float) -> None:
    pods = await serve_many(count, demand_per_s)
    print(",".join(str(pod.port) for pod in pods), flush=True)
    await asyncio.sleep(seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="serve N fake rating pods on 127.0.0.1")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--demand", type=float, default=10.0, help="tokens/s per pod")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(_main(args.count, args.demand, args.seconds))
    except KeyboardInterrupt:
        sys.exit(0)

"""A poll worker process: the shards of the pods that hash to it, for every target.

Started by `scaler.workers.WorkerPool` with the `spawn` method (the scaler runs gRPC's
threads: no plain fork). It talks to the scaler over one socket, in frames of a 4-byte
length and a pickle: `("addresses", target, label, [(host, port, address), ...])` sets
a target's pods in this shard, `("forget", target)` drops them, `("cycle", id, target,
PollRequest)` polls them and answers `(id, ShardReport)`, and `("partials", id, target,
window_s, fresh_for_s)` answers `(id, [Partial])`. It has its own event loop, aiohttp
session and `SeriesStore`, and ends when the socket closes or its parent dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.token_file import TokenFile
from scaler.pod_client import PodClient
from scaler.shard import PodShard, SeriesStore, ShardReport

log = logging.getLogger("scaler.worker")
FRAME = struct.Struct("!I")
PR_SET_PDEATHSIG = 1
# Per target: 4 in the main process, where RPCs wait behind each turn of the loop; here
# no RPC waits, so a target may use the whole process-wide cap (--max-in-flight), whose
# waiters still queue the targets' requests in turn.
MAX_IN_FLIGHT_PER_TARGET = 64
# When the workers and the main process share a core, the scheduler lets the main
# process's RPCs run first (a nice 5 process weighs about a third of a nice 0 one).
WORKER_NICE = 5
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[worker %(worker)s]: %(message)s"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What a worker needs of the scaler's config (pickled to the new process)."""

    index: int
    parent_pid: int
    pod_timeout_s: float
    pod_token_file: Path | None
    max_in_flight: int
    log_level: str


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message, or None at the end of the stream."""
    try:
        head = await reader.readexactly(FRAME.size)
        return pickle.loads(await reader.readexactly(FRAME.unpack(head)[0]))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def write_frame(writer: asyncio.StreamWriter, message: object) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(FRAME.pack(len(body)) + body)


def main(sock: socket.socket, settings: WorkerSettings) -> None:
    """The worker process's entry point."""
    _die_with(settings.parent_pid)
    with contextlib.suppress(OSError):  # below the main process: its RPCs come first
        os.nice(WORKER_NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the scaler decides when workers stop
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT, force=True)
    old_factory = logging.getLogRecordFactory()

    def record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made = old_factory(*args, **kwargs)
        made.worker = settings.index
        return made

    logging.setLogRecordFactory(record)
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)  # as the scaler's own process: see server.tune_gc
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(Worker(settings).serve(sock))


def _die_with(parent_pid: int) -> None:
    """Never outlive the scaler: SIGKILL when the parent goes (the socket's end would
    tell too, but a worker busy in a long cycle reads it late)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before prctl took effect
        sys.exit(0)


class Worker:
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        token = TokenFile(settings.pod_token_file) if settings.pod_token_file else lambda: None
        self.client = PodClient(settings.pod_timeout_s, token=token)
        self.store = SeriesStore()
        self.in_flight = asyncio.Semaphore(settings.max_in_flight)
        self.shards: dict[int, PodShard] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def serve(self, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=sock)
        write_frame(writer, (0, "ready"))  # imported and listening: cycles are answered at once
        try:
            while (message := await read_frame(reader)) is not None:
                self.handle(message, writer)
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.client.close()
            writer.close()

    def handle(self, message: tuple[Any, ...], writer: asyncio.StreamWriter) -> None:
        kind = message[0]
        if kind == "addresses":
            _, target, label, addresses = message
            self._shard(target, label).set_addresses(addresses)
        elif kind == "forget":
            shard = self.shards.pop(message[1], None)
            if shard is not None:
                shard.close()
        elif kind == "cycle":
            _, request_id, target, request = message
            self._spawn(self._cycle(writer, request_id, target, request))
        elif kind == "partials":
            _, request_id, target, window_s, fresh_for_s = message
            shard = self.shards.get(target)
            now = time.monotonic()  # the shards' clock, the same in every process
            parts = [] if shard is None else [shard.partial(window_s, fresh_for_s, now)]
            write_frame(writer, (request_id, parts))

    def _shard(self, target: int, label: str) -> PodShard:
        shard = self.shards.get(target)
        if shard is None:
            shard = self.shards[target] = PodShard(
                label,
                self.client.fetch,
                store=self.store,
                max_in_flight=MAX_IN_FLIGHT_PER_TARGET,
                shared_in_flight=self.in_flight,
            )
        return shard

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _cycle(
        self, writer: asyncio.StreamWriter, request_id: int, target: int, request: Any
    ) -> None:
        shard = self.shards.get(target)
        if shard is None:
            report = ShardReport({}, None)
        else:
            report = await shard.cycle(request)
        write_frame(writer, (request_id, report))

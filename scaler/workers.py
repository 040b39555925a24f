"""The poll worker processes, seen from the scaler's main process.

`WorkerPool` starts `--poll-workers` processes (`scaler.worker`, `spawn` method), gives
each pod to the worker its address hashes to (the same worker for every target, so a
pod new to a target still starts from the series another target keeps of it), and
restarts a worker that dies, handing it its shard again. `WorkerPods` is one target's
pods across the workers, for its poller: each cycle it asks every worker for its
shard's `ShardReport` and hands them to the poller, which combines the partial sums. So
the main process's event loop serves gRPC and HTTP and combines a few sums per target,
while the pods' requests, their parsing and their series live in the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import socket
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scaler.aggregation import Partial
from scaler.shard import Address, PollRequest, ShardReport
from scaler.worker import WorkerSettings, main, read_frame, write_frame

log = logging.getLogger("scaler.workers")
STOP_GRACE_S = 2.0  # a worker that has not ended this long after its socket closed is killed
RESTART_PAUSE_S = 1.0  # between two starts of the same worker
ANSWER_MARGIN_S = 1.0  # a worker answers a cycle this long after its deadline, or is skipped
READY_TIMEOUT_S = 30.0  # from spawn to a worker's first word
RECYCLE_AFTER_PODS = 1000  # a worker that held this many pods and holds none is restarted


class WorkerGone(RuntimeError):
    """The worker ended before it answered."""


def shard_of(address: str, count: int) -> int:
    """The worker of a pod: the same for every target and every scaler run."""
    return zlib.crc32(address.encode()) % count


@dataclass
class _Process:
    """One worker: its process, its socket, what it was asked and not yet answered."""

    index: int
    process: Any = None
    writer: asyncio.StreamWriter | None = None
    reader_task: asyncio.Task[None] | None = None
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    shard: dict[int, tuple[str, tuple[Address, ...]]] = field(default_factory=dict)
    peak_pods: int = 0
    started_at: float = 0.0
    recycling: bool = False  # restarted on purpose, not counted as a restart


class WorkerPool:
    """`count` worker processes, restarted when they die."""

    def __init__(self, count: int, settings: WorkerSettings) -> None:
        self.count = count
        self.restarts = 0
        self._settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._workers = [_Process(index) for index in range(count)]
        self._ids = itertools.count(1)
        self._targets = itertools.count(1)
        self._stopping = False

    @property
    def alive(self) -> int:
        return sum(1 for worker in self._workers if _running(worker))

    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers if _running(worker)]

    async def start(self) -> None:
        await asyncio.gather(*(self._start(worker) for worker in self._workers))

    async def _start(self, worker: _Process) -> None:
        ours, theirs = socket.socketpair()
        settings = WorkerSettings(
            index=worker.index,
            parent_pid=os.getpid(),
            pod_timeout_s=self._settings.pod_timeout_s,
            pod_token_file=self._settings.pod_token_file,
            max_in_flight=self._settings.max_in_flight,
            log_level=self._settings.log_level,
        )
        process = self._context.Process(
            target=main, args=(theirs, settings), name=f"rating-scaler poll worker {worker.index}"
        )
        process.daemon = True
        process.start()
        theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        with contextlib.suppress(TimeoutError):  # started, its imports done
            async with asyncio.timeout(READY_TIMEOUT_S):
                await read_frame(reader)
        if self._stopping:  # stopped while this one started
            writer.close()
            await _reap(process)
            return
        worker.process, worker.writer, worker.started_at = process, writer, time.monotonic()
        worker.peak_pods = _pods(worker)
        for target, (label, addresses) in worker.shard.items():  # a restart: its shard again
            write_frame(writer, ("addresses", target, label, addresses))
        worker.reader_task = asyncio.create_task(
            self._read(worker, reader), name=f"poll worker {worker.index}"
        )

    async def _read(self, worker: _Process, reader: asyncio.StreamReader) -> None:
        while (message := await read_frame(reader)) is not None:
            request_id, payload = message
            future = worker.pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(payload)
        await self._ended(worker)

    async def _ended(self, worker: _Process) -> None:
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(WorkerGone(f"poll worker {worker.index} ended"))
        worker.pending.clear()
        process, worker.writer, worker.process = worker.process, None, None
        pid, exit_code = process.pid, await _reap(process)
        if self._stopping:
            return
        if not worker.recycling:
            self.restarts += 1
            log.warning(
                "poll worker %d (pid %s) ended with exit code %s; restarting it",
                worker.index,
                pid,
                exit_code,
            )
        worker.recycling = False
        await asyncio.sleep(max(0.0, worker.started_at + RESTART_PAUSE_S - time.monotonic()))
        if not self._stopping:
            await self._start(worker)

    def target_id(self) -> int:
        return next(self._targets)

    def assign(self, target: int, label: str, addresses: Sequence[Address]) -> None:
        """A target's pods now: each worker gets its shard of them (when it changed)."""
        shards: list[list[Address]] = [[] for _ in self._workers]
        for entry in addresses:
            shards[shard_of(entry[2], self.count)].append(entry)
        for worker, shard in zip(self._workers, shards, strict=True):
            given = tuple(shard)
            if worker.shard.get(target) == (label, given):
                continue
            worker.shard[target] = (label, given)
            worker.peak_pods = max(worker.peak_pods, _pods(worker))
            self._send(worker, ("addresses", target, label, given))

    def forget(self, target: int) -> None:
        for worker in self._workers:
            if worker.shard.pop(target, None) is not None:
                self._send(worker, ("forget", target))
                self._recycle_if_emptied(worker)

    def _recycle_if_emptied(self, worker: _Process) -> None:
        """A worker that held many pods and holds none is restarted: its heap stays as
        large as its busiest moment otherwise, and a new one is small."""
        emptied = worker.peak_pods >= RECYCLE_AFTER_PODS and _pods(worker) == 0
        if emptied and worker.writer and not self._stopping:
            log.info(
                "poll worker %d holds no pods any more: restarting it to free memory", worker.index
            )
            worker.recycling = True
            worker.writer.close()

    async def ask(self, target: int, message: tuple[Any, ...], timeout_s: float) -> list[Any]:
        """Send `message` (its id added) to every worker; their answers, None for a
        worker that did not answer within `timeout_s`."""
        futures = [self._request(worker, target, message) for worker in self._workers]
        done = await asyncio.gather(*(_within(f, timeout_s) for f in futures))
        return list(done)

    def _request(
        self, worker: _Process, target: int, message: tuple[Any, ...]
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if worker.writer is None:
            future.set_exception(WorkerGone(f"poll worker {worker.index} is restarting"))
            return future
        request_id = next(self._ids)
        worker.pending[request_id] = future
        self._send(worker, (message[0], request_id, target, *message[1:]))
        return future

    def _send(self, worker: _Process, message: tuple[Any, ...]) -> None:
        if worker.writer is not None and not worker.writer.is_closing():
            write_frame(worker.writer, message)

    async def stop(self) -> None:
        """Close every worker's socket (they end on it), then wait; kill the late ones."""
        self._stopping = True
        for worker in self._workers:
            if worker.writer is not None:
                worker.writer.close()
        tasks = [worker.reader_task for worker in self._workers if worker.reader_task]
        await asyncio.gather(*tasks, return_exceptions=True)


class WorkerPods:
    """One target's pods across the worker processes: what its poller drives."""

    def __init__(self, pool: WorkerPool, label: str, pod_timeout_s: float) -> None:
        self._pool = pool
        self._target = pool.target_id()
        self._label = label
        self._pod_timeout_s = pod_timeout_s
        self._last: list[ShardReport | None] = [None] * pool.count

    def set_addresses(self, addresses: Sequence[Address]) -> None:
        self._pool.assign(self._target, self._label, addresses)

    async def cycle(self, request: PollRequest) -> list[ShardReport]:
        """Every worker's report; a worker that did not answer (it died, it is
        restarting) counts as it stood at its last one."""
        timeout_s = request.deadline - time.monotonic() + self._pod_timeout_s + ANSWER_MARGIN_S
        answers = await self._pool.ask(self._target, ("cycle", request), max(timeout_s, 0.1))
        reports: list[ShardReport] = []
        for index, answer in enumerate(answers):
            if isinstance(answer, ShardReport):
                self._last[index] = answer
            elif (last := self._last[index]) is not None:
                answer = ShardReport(last.partials, last.pods)
            if answer is not None:
                reports.append(answer)
        return reports

    async def partials(self, window_s: float, fresh_for_s: float) -> list[Partial]:
        message = ("partials", window_s, fresh_for_s)
        answers = await self._pool.ask(self._target, message, ANSWER_MARGIN_S)
        return [part for answer in answers if answer for part in answer]

    def partials_now(self, window_s: float, fresh_for_s: float) -> list[Partial] | None:
        return None  # in the workers: ask them

    async def close(self) -> None:
        self._pool.forget(self._target)


def _pods(worker: _Process) -> int:
    return sum(len(addresses) for _, addresses in worker.shard.values())


def _running(worker: _Process) -> bool:
    return worker.process is not None and worker.writer is not None and worker.process.is_alive()


async def _within(future: asyncio.Future[Any], timeout_s: float) -> Any:
    try:
        async with asyncio.timeout(timeout_s):
            return await future
    except (TimeoutError, WorkerGone):
        return None


async def _reap(process: Any) -> int | None:
    """Wait for a process that is ending, without blocking the loop; kill it if late.
    Returns its exit code."""
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    loop.add_reader(process.sentinel, ended.set)  # readable once the process has ended
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_GRACE_S):
                await ended.wait()
    finally:
        loop.remove_reader(process.sentinel)
    if process.is_alive():
        process.kill()
        process.join(1.0)  # SIGKILL: at once
    process.join(0)
    exit_code: int | None = process.exitcode
    with contextlib.suppress(ValueError):
        process.close()
    return exit_code

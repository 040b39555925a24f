"""The demo's processes, on `harness`: every child it spawns is registered and stopped.

`Children.spawn` starts a command (see `harness.child`: safe with threads) with its log in
one folder; `stop_all` stops what still runs. The kernel also stops each child if the
demo itself dies (`die_with_parent`). `until_signal` turns SIGINT and SIGTERM into the
cancellation of the demo's main task, so that its cleanup runs in order; a second
signal while it stops is ignored, and `Interrupted` is raised once everything stopped.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness import Child, spawn, stop_all

STOP_TIMEOUT_S = 10.0
T = TypeVar("T")


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: remembers which signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Children:
    """Every process the demo starts, in start order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Child] = []

    def spawn(
        self, name: str, argv: Sequence[str], ports: Mapping[str, int] | None = None
    ) -> Child:
        child = spawn(name, argv, self.log_dir / f"{name}.log", ports=ports)
        self.started.append(child)
        return child

    def still_running(self) -> list[Child]:
        return [child for child in self.started if child.running]

    def stop_all(self) -> None:
        """Stop whatever still runs, all at once, newest first; signals ignored meanwhile."""
        with signals_ignored():
            stop_all(self.still_running(), STOP_TIMEOUT_S)


@contextmanager
def signals_ignored() -> Iterator[None]:
    ignored = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, action in ignored.items():
            signal.signal(sig, action)


@dataclass
class StopSignal:
    """Which signal asked the demo to stop, if one did."""

    signum: int | None = None


async def until_signal(work: Awaitable[T]) -> T:
    """Await `work`; SIGINT or SIGTERM cancels it (its cleanup runs) and then raises
    `Interrupted`."""
    task = asyncio.current_task()
    assert task is not None
    with stop_signals(task) as received:
        try:
            return await work
        except asyncio.CancelledError:
            if received.signum is not None:
                raise Interrupted(received.signum) from None
            raise


@contextmanager
def stop_signals(task: asyncio.Task[Any]) -> Iterator[StopSignal]:
    """Within the block, SIGINT and SIGTERM cancel `task` once."""
    loop = asyncio.get_running_loop()
    received = StopSignal()

    def on_signal(signum: int) -> None:
        if received.signum is None:
            received.signum = signum
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield received
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

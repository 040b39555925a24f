"""SIGINT and SIGTERM as the orderly end of an asyncio run (the demo, the benchmarks).

`until_signal` turns SIGINT and SIGTERM into the cancellation of the run's main task, so
that its cleanup runs in order; a second signal while it stops is ignored, and
`Interrupted` is raised once everything stopped.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: remembers which signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class StopSignal:
    """Which signal asked the run to stop, if one did."""

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

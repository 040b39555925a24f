"""The fleet manager with real `rating-api` processes: pods start, become ready, are
removed in the ReplicaSet's order and drain on SIGTERM; one that dies is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from demo.fleet import Fleet, Pod, removal_order
from harness.group import Group


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_pods_start_become_ready_are_removed_newest_first_and_replaced(
    tmp_path: Path,
) -> None:
    children = Group(tmp_path / "logs")
    changes: list[int] = []
    fleet = Fleet("direct", children, clock=time.monotonic, bucket_rate=10.0, bucket_capacity=20.0,
                  on_change=lambda f: changes.append(len(f.serving())), pre_stop_s=0.2)  # fmt: skip
    try:
        fleet.scale(2)
        await fleet.wait_ready()
        fleet.scale(3)
        await fleet.wait_ready()
        assert all(alive(pod.child.pid) for pod in fleet.pods)
        assert max(changes) == 3
        # the two ready for the shortest time go; the one ready first stays
        first, second, third = sorted(fleet.pods, key=lambda pod: pod.ready_s or 0.0)

        fleet.scale(1)
        assert [pod.terminating_s is None for pod in (first, second, third)] == [True, False, False]
        assert [pod.public_address for pod in fleet.serving()] == [first.public_address]
        await until(lambda: not second.alive and not third.alive)
        assert not alive(second.child.pid) and not alive(third.child.pid)
        exits = [e for e in fleet.events if e.kind == "exit"]
        assert {(e.pod, e.detail) for e in exits} == {(second.name, "exit code 0"),
                                                      (third.name, "exit code 0")}  # fmt: skip

        os.kill(first.child.pid, signal.SIGKILL)  # a pod that dies is replaced
        runner = asyncio.create_task(fleet.run())
        await until(lambda: len(fleet.serving()) == 1 and fleet.serving()[0] is not first)
        runner.cancel()
        assert [e.kind for e in fleet.events if e.pod == first.name][-1] == "exit"
    finally:
        await fleet.close()
        children.stop_all()
    kinds = {(e.pod, e.kind) for e in fleet.events}
    for pod in fleet.pods:
        assert {(pod.name, "start"), (pod.name, "ready"), (pod.name, "exit")} <= kinds
        assert not alive(pod.child.pid)
    lives = fleet.lives(origin_s=fleet.pods[0].started_s)
    assert lives[0].started_s == 0.0 and all(life.exited_s is not None for life in lives)


class FakeChild:
    pid = 1


def pod(started_s: float, ready_s: float | None) -> Pod:
    return Pod(f"pod-{started_s}", FakeChild(), started_s, ready_s)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pods", "first_out"),
    [
        ([pod(0, 1), pod(5, None), pod(2, 3)], "pod-5"),  # not ready goes first
        ([pod(0, 9), pod(5, 6), pod(2, 3)], "pod-0"),  # then the one ready for the shortest time
        ([pod(0, None), pod(5, None)], "pod-5"),  # then the newest
    ],
    ids=["not-ready-first", "shortest-ready-next", "newest-last"],
)
def test_removal_order_is_the_replica_sets(pods: list[Pod], first_out: str) -> None:
    assert sorted(pods, key=removal_order)[0].name == first_out

"""The queue of held requests, on its own: arrival order, bounds, the version."""

from __future__ import annotations

import asyncio

import pytest

from activator.hold import Full, Holds, TimedOut


async def test_held_requests_get_ready_pods_in_arrival_order_round_robin() -> None:
    holds = Holds(max_held=10)
    waiting = []
    for _ in range(5):
        waiting.append(asyncio.ensure_future(holds.wait_for_pod(10.0)))
        await asyncio.sleep(0)  # each joins the queue before the next arrives
    assert holds.held == 5 and holds.ready_pod() is None
    holds.set_pods(["a:1", "b:1"])
    assert await asyncio.gather(*waiting) == ["a:1", "b:1", "a:1", "b:1", "a:1"]
    assert holds.held == 0 and holds.ready_pod() == "b:1"  # nobody waits: the next, at once


async def test_one_past_max_held_is_refused_and_a_timed_out_one_leaves_the_queue() -> None:
    holds = Holds(max_held=1)
    first = asyncio.ensure_future(holds.wait_for_pod(0.05))
    await asyncio.sleep(0)
    with pytest.raises(Full):
        await holds.wait_for_pod(1.0)
    with pytest.raises(TimedOut):
        await first
    state = holds.state()
    assert (state.held, state.timed_out_total, state.refused_full_total) == (0, 1, 1)


async def test_the_version_moves_when_the_queue_turns_active_or_idle_only() -> None:
    holds = Holds(max_held=10)
    start = holds.version
    waiting = [asyncio.ensure_future(holds.wait_for_pod(10.0)) for _ in range(3)]
    await asyncio.sleep(0)
    assert holds.version == start + 1  # empty -> held, once for three
    await holds.wait_change(start, 0.0)  # already moved: no wait
    holds.set_pods(["a:1"])
    await asyncio.gather(*waiting)
    assert holds.version == start + 2  # held -> empty


async def test_a_request_that_joins_after_the_pods_became_ready_is_not_left_waiting() -> None:
    """The public port looks for a ready pod, finds none, and then holds the request
    in a task of its own: the pods may become ready in between. Queued after that, the
    request would wait for a change of the ready set that may never come, and every
    request after it behind it (a burst at zero in `make e2e` saw 13 such time out)."""
    holds = Holds(max_held=10)
    assert holds.ready_pod() is None
    late = asyncio.ensure_future(holds.wait_for_pod(0.5))  # not queued yet
    holds.set_pods(["a:1"])
    assert await late == "a:1"
    assert holds.held == 0 and holds.ready_pod() == "a:1"

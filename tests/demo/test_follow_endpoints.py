"""The demo tells the scaler of a change of a fleet's ready pods at once, as a cluster's
endpointSlices discovery would, instead of at KEDA's next read."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from demo.orchestrate import follow_endpoints
from demo.triggers import DirectTrigger
from harness.fakepods import FakePod
from scaler.server import Scaler
from tests.scaler.conftest import fake_pods, scaler

__all__ = ["fake_pods", "scaler"]  # the fixtures, shared with the scaler's tests


async def test_a_new_ready_pod_reaches_the_scaler_before_kedas_next_read(
    scaler: Scaler, fake_pods: Callable[..., Awaitable[FakePod]]
) -> None:
    first, second = await fake_pods(demand_per_s=5.0), await fake_pods(demand_per_s=5.0)
    ready = [f"127.0.0.1:{first.port}"]
    trigger = DirectTrigger(f"127.0.0.1:{scaler.grpc_port}", name="follows")
    task = asyncio.create_task(follow_endpoints(lambda: list(ready), trigger))
    try:
        await asyncio.sleep(0.5)
        assert scaler.targets.scaled_objects == {}  # no change yet: nothing sent
        ready.append(f"127.0.0.1:{second.port}")
        for _ in range(100):  # 5 s at most
            if scaler.targets.scaled_objects:
                break
            await asyncio.sleep(0.05)
        [use] = scaler.targets.scaled_objects.values()
        assert {port for _, port in use.trigger.target.endpoints} == {first.port, second.port}
    finally:
        task.cancel()
        await trigger.close()

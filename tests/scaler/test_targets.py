"""The process-wide cap on targets, and what a forgotten target leaves behind: nothing.

`python -m tests.scaler.test_targets 2000` measures the RSS before and after creating and
forgetting 2,000 targets on a real scaler.
"""

from __future__ import annotations

import asyncio
import gc
import re
import sys
import weakref
from pathlib import Path

import grpc
import pytest
from prometheus_client import generate_latest

from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.server import Scaler, start
from scaler.target_key import TargetKey
from tests.scaler.conftest import with_config

CLOSED_PORT_BASE = 20_000  # nobody listens there: each target's one pod is refused at once


def so_ref(index: int) -> pb.ScaledObjectRef:
    """ScaledObject `index`, naming a target of its own (one pod on its own port)."""
    metadata = {"endpoints": f"127.0.0.1:{CLOSED_PORT_BASE + index}", "targetPerPod": "10"}
    return pb.ScaledObjectRef(name=f"so-{index}", namespace="edge", scalerMetadata=metadata)


async def create_targets(scaler: Scaler, count: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        for first in range(0, count, 100):
            batch = range(first, min(count, first + 100))
            await asyncio.gather(*(stub.GetMetricSpec(so_ref(index)) for index in batch))


def per_target_samples(scaler: Scaler) -> list[str]:
    text = generate_latest(scaler.registry).decode()
    return re.findall(r'^\S+\{[^}]*(?:target|scaled_object)="[^"]*".*$', text, re.MULTILINE)


async def test_a_target_past_the_cap_is_resource_exhausted_naming_the_flag() -> None:
    scaler = await start(with_config(max_targets=3, poll_interval_s=1.0))
    try:
        await create_targets(scaler, 3)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetMetricSpec(so_ref(3))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "--max-targets 3" in (caught.value.details() or "")
            assert "edge/so-3" in (caught.value.details() or "")
            # A target already polled is still answered, and after one is forgotten there
            # is room again.
            assert (await stub.GetMetricSpec(so_ref(0))).metricSpecs[0].targetSizeFloat == 10
            assert len(scaler.targets.pollers) == 3
            scaler.targets.views[so_ref_target(scaler, 1)].last_used_at = -1e9
            await scaler.targets.forget_idle()
            await stub.GetMetricSpec(so_ref(3))
        labels = {"method": "GetMetricSpec", "code": "RESOURCE_EXHAUSTED"}
        assert scaler.registry.get_sample_value("openclaw_rating_scaler_rpc_total", labels) == 1
    finally:
        await scaler.stop()


def so_ref_target(scaler: Scaler, index: int) -> TargetKey:
    port = CLOSED_PORT_BASE + index
    return next(key for key in scaler.targets.pollers if key.endpoints[0][1] == port)


async def test_forgotten_targets_leave_no_per_target_state_behind() -> None:
    scaler = await start(with_config(forget_after_s=3600.0, poll_interval_s=1.0))
    try:
        await create_targets(scaler, 50)
        await asyncio.sleep(1.2)  # every poller has run a cycle: series and caches exist
        pollers = [weakref.ref(poller) for poller in scaler.targets.pollers.values()]
        assert len(pollers) == 50 and per_target_samples(scaler)
        assert scaler.triggers.cache_info().currsize >= 50
        scaler.targets._idle_s = 0.0
        await scaler.targets.forget_idle()
        await asyncio.sleep(0.1)  # the loop lets go of the last cancelled poll task
        gc.collect()
        assert not scaler.targets.pollers and not scaler.targets.scaled_objects
        assert [ref for ref in pollers if ref() is not None] == []  # nothing holds a poller
        assert per_target_samples(scaler) == []
        assert scaler.triggers.cache_info().currsize == 0
        assert scaler.client._urls == {}
        assert [t for t in asyncio.all_tasks() if t.get_name().startswith("poll ")] == []
    finally:
        await scaler.stop()


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


async def measure(count: int) -> None:
    scaler = await start(with_config(forget_after_s=3600.0, max_targets=count, poll_interval_s=1.0))
    try:
        await create_targets(scaler, 10)  # warm every code path before the baseline
        scaler.targets._idle_s = 0.0
        await scaler.targets.forget_idle()
        scaler.targets._idle_s = 3600.0
        gc.collect()
        before = rss_mib()
        await create_targets(scaler, count)
        await asyncio.sleep(3.0)
        during = rss_mib()
        scaler.targets._idle_s = 0.0
        await scaler.targets.forget_idle()
        await asyncio.sleep(1.0)
        gc.collect()
        after = rss_mib()
        print(f"{count} targets: RSS {before:.1f} MiB before, {during:.1f} MiB with them, "
              f"{after:.1f} MiB after forgetting them")  # fmt: skip
    finally:
        await scaler.stop()


if __name__ == "__main__":
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))

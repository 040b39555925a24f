"""Poll worker processes: the same answers as polling in-process, a killed worker
restarted with its shard, and no worker left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.config import available_cpus, load
from scaler.readmodel import PodView
from scaler.server import Scaler, start
from scaler.workers import shard_of
from tests.procs import start_scaler
from tests.scaler.conftest import ref, with_config

PodFactory = Callable[..., Awaitable[FakePod]]
PREFIX = "openclaw_rating_scaler_"


@pytest.fixture
async def sharded() -> AsyncIterator[Scaler]:
    running = await start(with_config(poll_workers=3))
    yield running
    await running.stop()


async def answers(scaler: Scaler, so_ref: pb.ScaledObjectRef) -> tuple[float, bool, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        spec = await stub.GetMetricSpec(so_ref, timeout=5)
        request = pb.GetMetricsRequest(scaledObjectRef=so_ref, metricName="demand")
        value = await stub.GetMetrics(request, timeout=5)
        active = await stub.IsActive(so_ref, timeout=5)
    return (
        value.metricValues[0].metricValueFloat,
        active.result,
        spec.metricSpecs[0].targetSizeFloat,
    )


async def settled(scaler: Scaler, so_ref: pb.ScaledObjectRef, cycles: int = 4) -> None:
    for _ in range(50):  # the first call starts the target; it may end before its first poll
        try:
            await answers(scaler, so_ref)
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    view = next(iter(scaler.targets.views.values()))
    await view.wait_cycle_after(view.cycles + cycles - 1, 10.0)


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        pytest.param("max 100000\n", 64, id="no-quota"),
        pytest.param("100000 100000\n", 1, id="limit-1"),
        pytest.param("150000 100000\n", 2, id="limit-1.5"),
        pytest.param("1000 100000\n", 1, id="limit-10m"),
        pytest.param("garbage", 64, id="unreadable"),
    ],
)
def test_the_cpus_available_count_the_cgroup_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str, expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert available_cpus(tmp_path / "cpu.max", tmp_path / "no-v1") == expected
    assert available_cpus(tmp_path / "absent", tmp_path / "no-v1") == 64


@pytest.mark.parametrize(
    ("quota_us", "expected"),
    [
        pytest.param("-1", 64, id="no-quota"),
        pytest.param("100000", 1, id="limit-1"),
        pytest.param("150000", 2, id="limit-1.5"),
    ],
)
def test_a_cgroup_v1_node_counts_its_cfs_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quota_us: str, expected: int
) -> None:
    """kubelet on a cgroup v1 node writes a pod's CPU limit as cpu.cfs_quota_us."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    (tmp_path / "cpu.cfs_quota_us").write_text(quota_us + "\n")
    (tmp_path / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path / "no-cpu.max", tmp_path) == expected


def test_the_default_is_the_cpus_available_or_none_on_one() -> None:
    cpus = available_cpus()
    assert cpus <= len(os.sched_getaffinity(0))
    assert load([], env={}).poll_workers == (cpus if cpus >= 2 else 0)
    assert load(["--poll-workers", "0"], env={}).poll_workers == 0
    assert load([], env={"RATING_SCALER_POLL_WORKERS": "3"}).poll_workers == 3


def test_a_pod_lands_in_the_same_worker_for_every_target() -> None:
    addresses = [f"10.0.{i // 250}.{i % 250}:9090" for i in range(1000)]
    counts = [0, 0, 0]
    for address in addresses:
        counts[shard_of(address, 3)] += 1
        assert shard_of(address, 3) == shard_of(address, 3)
    assert min(counts) > 250  # spread, not lumped


async def test_workers_answer_what_polling_in_process_answers(
    scaler: Scaler, sharded: Scaler, fake_pods: PodFactory
) -> None:
    """The same pods, polled by the scaler itself and by 3 workers: the same answers,
    down to the counts of fresh, rated, failed and extrapolated pods."""
    pods = [await fake_pods(demand_per_s=3.0 + index) for index in range(11)]
    pods.append(await fake_pods(behaviour="error"))  # fails: the others are extrapolated
    so_ref = ref(pods, window="2")
    await asyncio.gather(settled(scaler, so_ref), settled(sharded, so_ref))
    (local,) = scaler.targets.views.values()
    (remote,) = sharded.targets.views.values()
    expected, got = local.aggregate(2.0), remote.aggregate(2.0)
    for field in ("pods_total", "pods_fresh", "pods_rated", "pods_failed", "extrapolated"):
        assert getattr(got, field) == getattr(expected, field), field
    assert got.demand_per_s == pytest.approx(expected.demand_per_s, rel=1e-3)
    assert got.refill_per_s_per_pod == expected.refill_per_s_per_pod
    assert got.deficit_tokens == pytest.approx(expected.deficit_tokens, rel=1e-3)
    local_answer, sharded_answer = await answers(scaler, so_ref), await answers(sharded, so_ref)
    assert sharded_answer == pytest.approx(local_answer, rel=1e-3)
    assert sharded_answer[0] == pytest.approx(sum(3.0 + i for i in range(11)), rel=1e-2)
    snapshot = remote.snapshot()

    def seen(pods: tuple[PodView, ...]) -> dict[str, tuple[bool, bool]]:
        return {pod.address: (pod.fresh, pod.error is None) for pod in pods}

    assert seen(snapshot.pods) == seen(local.snapshot().pods)
    assert snapshot.pod_errors["http_status"] > 0


async def test_a_new_window_on_a_sharded_target_is_summed_at_once(
    scaler: Scaler, sharded: Scaler, fake_pods: PodFactory
) -> None:
    """A second ScaledObject with another window: its first answer is the workers'
    sums over its own window, not the nearest one."""
    pods = [await fake_pods(demand_per_s=5.0) for _ in range(4)]
    await asyncio.gather(settled(scaler, ref(pods)), settled(sharded, ref(pods)))
    other = ref(pods, name="other", window="1")
    local, remote = await answers(scaler, other), await answers(sharded, other)
    assert remote == pytest.approx(local, rel=1e-3)


async def test_a_killed_worker_is_restarted_and_its_pods_polled_again(
    sharded: Scaler, fake_pods: PodFactory
) -> None:
    pods = [await fake_pods(demand_per_s=2.0) for _ in range(9)]
    so_ref = ref(pods)
    await settled(sharded, so_ref)
    assert sharded.workers is not None
    registry = sharded.registry
    assert registry.get_sample_value(PREFIX + "workers") == 3
    assert registry.get_sample_value(PREFIX + "worker_restarts_total") == 0
    victim = sharded.workers.pids()[0]
    os.kill(victim, signal.SIGKILL)
    for _ in range(100):
        await asyncio.sleep(0.05)
        if len(sharded.workers.pids()) == 3 and victim not in sharded.workers.pids():
            break
    assert victim not in sharded.workers.pids()
    assert registry.get_sample_value(PREFIX + "workers") == 3
    assert registry.get_sample_value(PREFIX + "worker_restarts_total") == 1
    view = next(iter(sharded.targets.views.values()))
    await view.wait_cycle_after(view.cycles + 3, 10.0)  # the new worker's pods: rated again
    agg = view.aggregate(view.window_s)
    assert (agg.pods_total, agg.pods_fresh, agg.pods_rated) == (9, 9, 9)
    value, active, _ = await answers(sharded, so_ref)
    assert value == pytest.approx(18.0, rel=1e-2) and active


async def test_workers_end_with_the_scaler(fake_pods: PodFactory) -> None:
    running = await start(with_config(poll_workers=2))
    assert running.workers is not None
    pids = running.workers.pids()
    assert len(pids) == 2
    await running.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_workers_do_not_outlive_a_killed_scaler(tmp_path: Path) -> None:
    """SIGKILL gives the scaler no chance to stop them: the kernel does
    (PR_SET_PDEATHSIG), and their socket's end would too."""
    proc = start_scaler(tmp_path, "--poll-workers", "2")
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    workers: list[int] = []
    for _ in range(100):  # spawned before /healthz answers; spawn's resource tracker too
        workers = [int(pid) for pid in children.read_text().split()]
        if len(workers) >= 2:
            break
        time.sleep(0.05)
    assert len(workers) >= 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.popen.wait(5)  # reaped, and nothing else killed (not Child.kill: its group)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; its parent (gone) would reap it

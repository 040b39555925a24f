"""Each claim of docs/SECURITY.md about the scaler's own bounds, checked against real servers.

Every test quotes the sentence it checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import pytest

from harness.fakepods import Concurrency, FakePod
from scaler._proto import externalscaler_pb2 as pb
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.bucket_state import BucketState
from scaler.config import DEFAULT_HOST_POLICY, ScalerConfig, load
from scaler.discovery.static import StaticDiscovery
from scaler.pod_client import BUCKET_PATH, MAX_BODY_BYTES, PodClient
from scaler.pod_errors import PodError
from scaler.poller import TargetPoller
from scaler.server import Scaler, build, start
from scaler.servicer import TriggerCache
from scaler.target_key import TargetKey
from scaler.targets import TargetLimitError, Targets
from scaler.trigger import MetadataError, TriggerConfig, parse_trigger
from tests.scaler.conftest import ref, with_config

PodFactory = Callable[..., Awaitable[FakePod]]
Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]
GUARD_S = 10.0  # a hung test fails here instead of hanging; no claim is timed


@dataclass
class RawPod:
    """A pod's admin port answering every request with `answer`; it keeps the request lines."""

    answer: Answer
    request_lines: list[bytes] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.request_lines.append(head.split(b"\r\n")[0])
            await self.answer(writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def raw_pod() -> AsyncIterator[Callable[[Answer], Awaitable[RawPod]]]:
    started: list[RawPod] = []

    async def make(answer: Answer) -> RawPod:
        pod = RawPod(answer)
        await pod.start()
        started.append(pod)
        return pod

    yield make
    for pod in started:
        await pod.stop()


@pytest.fixture
async def client() -> AsyncIterator[PodClient]:
    pod_client = PodClient(timeout_s=0.2)
    yield pod_client
    await pod_client.close()


async def fetch_error(client: PodClient, port: int) -> PodError:
    async with asyncio.timeout(GUARD_S):
        with pytest.raises(PodError) as caught:
            await client.fetch("127.0.0.1", port)
    return caught.value


def bucket_body(size: int) -> bytes:
    """A valid bucket state, padded with leading spaces (valid JSON) to `size` bytes."""
    body = FakePod(name="pod-0").body()
    return b" " * (size - len(body)) + body


@pytest.fixture
async def slow_scaler() -> AsyncIterator[Scaler]:
    """A scaler polling once a second, with time for slow pods to answer."""
    running = await start(with_config(poll_interval_s=1.0, pod_timeout_s=0.9))
    yield running
    await running.stop()


async def metric(stub: pb_grpc.ExternalScalerStub, so_ref: pb.ScaledObjectRef) -> float:
    request = pb.GetMetricsRequest(scaledObjectRef=so_ref, metricName="openclaw-demand")
    response = await stub.GetMetrics(request, timeout=5)
    return float(response.metricValues[0].metricValueFloat)


def test_the_in_flight_cap_is_64_by_default() -> None:
    """'at most 64 pod requests are in flight' (the default of --max-in-flight)."""
    assert load([], env={}).max_in_flight == ScalerConfig().max_in_flight == 64


async def test_at_most_64_pod_requests_are_in_flight_across_all_targets(
    slow_scaler: Scaler, fake_pods: PodFactory
) -> None:
    """'at most 64 pod requests are in flight': one cap for the process, not per target.

    20 targets of 10 pods that each take 50 ms to answer: without a shared cap the
    targets' own limits (4 each) would let 80 requests out at once.
    """
    answering = Concurrency()
    targets = [
        [await fake_pods(demand_per_s=5.0, delay_s=0.05, answering=answering) for _ in range(10)]
        for _ in range(20)
    ]
    refs = [
        ref(pods, name=f"so-{index}", window="5", targetPerPod="10")
        for index, pods in enumerate(targets)
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{slow_scaler.grpc_port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
        await asyncio.gather(*(stub.GetMetricSpec(so_ref, timeout=5) for so_ref in refs))
        pollers = list(slow_scaler.targets.pollers.values())
        views = list(slow_scaler.targets.views.values())
        assert len(pollers) == len(views) == 20
        # Four cycles of every target: each pod polled four times, and has a rate.
        await asyncio.gather(*(v.wait_cycle_after(v.cycles + 3, 10.0) for v in views))
        values = await asyncio.gather(*(metric(stub, so_ref) for so_ref in refs))
    errors = [dict(poller.pod_errors) for poller in pollers]
    assert 32 < answering.peak <= 64, (answering.peak, errors)  # the cap is what bounded it
    # No target starved: every pod of every target was polled, and answered.
    assert all(pod.requests >= 4 for pods in targets for pod in pods)
    unrated = [pod for p in pollers for pod, series in p.pods.items() if not series.has_rate]
    assert unrated == [], errors
    assert all(value > 0 for value in values), values


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_are_not_followed(
    client: PodClient, fake_pods: PodFactory, raw_pod: Callable[[Answer], Awaitable[RawPod]],
    status: int,
) -> None:  # fmt: skip
    """'redirects are not followed (`allow_redirects=False`)': a pod answering a redirect
    to another host is a pod error, and the other host is never asked."""
    elsewhere = await fake_pods()

    async def redirect(writer: asyncio.StreamWriter) -> None:
        location = f"http://127.0.0.1:{elsewhere.port}{BUCKET_PATH}"
        writer.write(
            f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
        )

    pod = await raw_pod(redirect)
    error = await fetch_error(client, pod.port)
    assert (error.reason, error.detail) == ("http_status", f"HTTP {status}")
    assert elsewhere.requests == 0
    assert pod.request_lines == [f"GET {BUCKET_PATH} HTTP/1.1".encode()]


@pytest.mark.parametrize(
    "endpoint",
    ["127.0.0.1:9090/admin", "127.0.0.1/v1/other:9090", "http://127.0.0.1:9090"],
    ids=["path-after-port", "path-before-port", "url"],
)
def test_the_path_is_fixed_an_endpoint_cannot_carry_one(endpoint: str) -> None:
    """'The path is fixed (`BUCKET_PATH = "/v1/bucket"`)': endpoints are host:port only."""
    with pytest.raises(MetadataError) as caught:
        parse_trigger({"endpoints": endpoint}, DEFAULT_HOST_POLICY)
    assert caught.value.key == "endpoints"


@pytest.mark.parametrize(
    ("size", "framing", "accepted"),
    [
        (MAX_BODY_BYTES, "content-length", True),
        (MAX_BODY_BYTES + 1, "content-length", False),
        (MAX_BODY_BYTES, "until-close", True),
        (MAX_BODY_BYTES + 1, "until-close", False),
    ],
    ids=["64KiB-length", "64KiB+1-length", "64KiB-no-length", "64KiB+1-no-length"],
)
async def test_answers_are_read_to_at_most_64_kib(
    client: PodClient, raw_pod: Callable[[Answer], Awaitable[RawPod]],
    size: int, framing: str, accepted: bool,
) -> None:  # fmt: skip
    """'answers are read to at most 64 KiB': with or without a Content-Length."""
    assert MAX_BODY_BYTES == 64 * 1024

    async def answer(writer: asyncio.StreamWriter) -> None:
        length = f"Content-Length: {size}" if framing == "content-length" else "Connection: close"
        writer.write(f"HTTP/1.1 200 OK\r\n{length}\r\n\r\n".encode() + bucket_body(size))

    pod = await raw_pod(answer)
    if accepted:
        async with asyncio.timeout(GUARD_S):
            state = await client.fetch("127.0.0.1", pod.port)
        assert state.pod == "pod-0"
    else:
        assert (await fetch_error(client, pod.port)).reason == "too_large"


async def test_an_answer_is_bounded_by_the_pod_timeout_however_it_trickles(
    client: PodClient, raw_pod: Callable[[Answer], Awaitable[RawPod]]
) -> None:
    """'answers are read ... within `--pod-timeout`': the whole answer, not each read.

    The pod sends its head at once, then one byte every 20 ms: each read is quick, the
    answer never ends (it would take 20 minutes to reach 64 KiB).
    """

    async def trickle(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n\r\n")
        for _ in range(60_000):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.02)

    pod = await raw_pod(trickle)
    error = await fetch_error(client, pod.port)
    assert (error.reason, error.detail) == ("timeout", "no answer within 0.2s")


async def test_the_scaler_bounds_each_pod_by_its_pod_timeout_flag(fake_pods: PodFactory) -> None:
    """'within `--pod-timeout`': the flag's value is the bound the running scaler uses."""
    hung, good = await fake_pods(behaviour="hang"), await fake_pods(demand_per_s=5.0)
    scaler = await start(with_config(poll_interval_s=1.0, pod_timeout_s=0.15))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
            await stub.GetMetricSpec(ref([hung, good]), timeout=5)
        [poller] = scaler.targets.pollers.values()
        errors = {address: series.last_error for address, series in poller.pods.items()}
    finally:
        await scaler.stop()
    assert errors == {
        f"127.0.0.1:{hung.port}": "timeout: no answer within 0.15s",
        f"127.0.0.1:{good.port}": None,
    }


@pytest.mark.parametrize(("count", "accepted"), [(5000, True), (5001, False)])
def test_a_scaled_object_names_at_most_5000_endpoints(count: int, accepted: bool) -> None:
    """'A ScaledObject names at most 5000 endpoints.'"""
    metadata = {"endpoints": ",".join(f"127.0.0.1:{1 + index}" for index in range(count))}
    if accepted:
        assert len(parse_trigger(metadata, DEFAULT_HOST_POLICY).target.endpoints) == count
    else:
        with pytest.raises(MetadataError, match="at most 5000 entries, got 5001") as caught:
            parse_trigger(metadata, DEFAULT_HOST_POLICY)
        assert caught.value.key == "endpoints"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def trigger_for(index: int) -> TriggerConfig:
    metadata = {"endpoints": f"127.0.0.1:{1 + index}", "targetPerPod": "10"}
    return parse_trigger(metadata, DEFAULT_HOST_POLICY)


def podless_targets(clock: FakeClock | None = None, idle_s: float = 600.0) -> Targets:
    """Targets whose pollers find no pods (nothing is sent), as the server makes them."""

    def make(target: TargetKey) -> TargetPoller:
        async def never(host: str, port: int) -> BucketState:
            raise AssertionError("no pod to fetch")

        return TargetPoller(
            target, StaticDiscovery(()), never, poll_interval_s=1.0, clock=clock or FakeClock()
        )

    return Targets(make, first_poll_timeout_s=0.1, clock=clock or FakeClock(), idle_s=idle_s)


async def test_at_most_1000_targets_are_polled_by_default() -> None:
    """'at most 1000 targets are polled at once (`--max-targets`)'."""
    targets = podless_targets()
    assert targets.max_targets == load([], env={}).max_targets == 1000
    try:
        for index in range(1000):
            await targets.view_for("edge", f"so-{index}", trigger_for(index), wait=False)
        with pytest.raises(TargetLimitError, match="--max-targets 1000"):
            await targets.view_for("edge", "so-1000", trigger_for(1000), wait=False)
        assert len(targets.pollers) == 1000
    finally:
        await targets.close()


async def test_targets_nobody_asked_about_for_10_minutes_are_forgotten() -> None:
    """'targets nobody asked about for 10 minutes are forgotten' (`--forget-after` 600)."""
    assert load([], env={}).forget_after_s == 600.0
    assert build(ScalerConfig()).targets._idle_s == 600.0  # what the server wires in
    clock = FakeClock()
    targets = podless_targets(clock, idle_s=600.0)
    try:
        await targets.view_for("edge", "asked", trigger_for(0), wait=False)
        await targets.view_for("edge", "left", trigger_for(1), wait=False)
        clock.now += 599.0
        await targets.view_for("edge", "asked", trigger_for(0), wait=False)
        await targets.forget_idle()
        assert len(targets.pollers) == 2  # 599 s: nothing forgotten yet
        clock.now += 2.0
        await targets.forget_idle()
        assert list(targets.pollers) == [trigger_for(0).target]
        assert [key.name for key in targets.scaled_objects] == ["asked"]
    finally:
        await targets.close()


def test_parsed_metadata_sits_in_a_bounded_lru_cache() -> None:
    """'parsed metadata sits in a bounded LRU cache': 3000 distinct triggers leave 1024."""
    triggers = TriggerCache(DEFAULT_HOST_POLICY)
    refs = [
        pb.ScaledObjectRef(
            name=f"so-{index}", namespace="edge",
            scalerMetadata={"endpoints": f"127.0.0.1:{1 + index}", "targetPerPod": "10"},
        )
        for index in range(3000)
    ]  # fmt: skip
    for so_ref in refs:
        triggers.parse(so_ref.namespace, so_ref.scalerMetadata)
    info = triggers.cache_info()
    assert (info.maxsize, info.currsize, info.misses, info.hits) == (1024, 1024, 3000, 0)
    triggers.parse(refs[-1].namespace, refs[-1].scalerMetadata)  # the most recent is still there...
    triggers.parse(refs[0].namespace, refs[0].scalerMetadata)  # ...the oldest was evicted
    info = triggers.cache_info()
    assert (info.currsize, info.hits, info.misses) == (1024, 1, 3001)

"""A real rating-activator process, real rating-api pods and a real client, on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from harness import RatingActivator
from tests.conftest import ActivatorFactory, RatingPodFactory

BATCH = {"items": [{"id": "agent-42", "up": 42, "down": 7}]}
Reply = tuple[int, dict[str, str], bytes]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def post_rate(session: aiohttp.ClientSession, service: RatingActivator) -> Reply:
    url = service.public_url + "/v1/rate"
    async with session.post(url, json=BATCH) as response:
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, headers, await response.read()


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        return json.loads(await response.read())


async def write(path: Path, text: str) -> None:
    await asyncio.to_thread(path.write_text, text)


def held_url(service: RatingActivator) -> str:
    return f"http://{service.admin_address}/v1/held"


async def metric(session: aiohttp.ClientSession, service: RatingActivator, line: str) -> float:
    async with session.get(f"http://{service.admin_address}/metrics") as response:
        text = (await response.read()).decode()
    found = [row for row in text.splitlines() if row.startswith(line + " ")]
    assert found, f"{line} not in /metrics"
    return float(found[0].rsplit(" ", 1)[1])


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s: {what}"
        await asyncio.sleep(0.02)


async def held_now(session: aiohttp.ClientSession, service: RatingActivator, count: int) -> None:
    async def check() -> bool:
        return bool((await get_json(session, held_url(service)))["held"] == count)

    await until(check, f"{count} held")


async def test_a_request_held_at_zero_gets_the_first_ready_pods_answer_unchanged(
    activator: ActivatorFactory,
    endpoints_file: Path,
    rating_pod: RatingPodFactory,
    session: aiohttp.ClientSession,
) -> None:
    service, _ = await activator(hold_timeout_s=30)
    pending = asyncio.ensure_future(post_rate(session, service))
    await held_now(session, service, 1)
    pod = await asyncio.to_thread(rating_pod)
    await write(endpoints_file, f"127.0.0.1:{pod.ports['public']}\n")
    status, headers, body = await asyncio.wait_for(pending, 10.0)
    assert status == 200, body
    assert json.loads(body)["ratings"][0]["id"] == "agent-42"
    assert "ratelimit" in headers and "ratelimit-policy" in headers  # the pod's own
    assert await metric(session, service, 'openclaw_rating_activator_forwarded_total{held="true"}')
    assert await metric(session, service, "openclaw_rating_activator_held_total") == 1
    assert (await get_json(session, held_url(service)))["held"] == 0


async def test_a_request_while_a_pod_is_ready_is_forwarded_at_once_and_counted(
    activator: ActivatorFactory,
    endpoints_file: Path,
    rating_pod: RatingPodFactory,
    session: aiohttp.ClientSession,
) -> None:
    pod = await asyncio.to_thread(rating_pod)
    await write(endpoints_file, f"# the ready pods\n127.0.0.1:{pod.ports['public']}\nnot-a-pod\n")
    service, _ = await activator()

    async def ready() -> bool:
        return bool((await get_json(session, held_url(service)))["pods_ready"] == 1)

    await until(ready, "the pod listed")
    for _ in range(3):
        assert (await post_rate(session, service))[0] == 200
    line = 'openclaw_rating_activator_forwarded_total{held="false"}'
    assert await metric(session, service, line) == 3
    assert await metric(session, service, "openclaw_rating_activator_held_total") == 0


async def test_a_pod_that_never_becomes_ready_gives_503_with_retry_after_and_the_queue_drains(
    activator: ActivatorFactory, session: aiohttp.ClientSession
) -> None:
    service, _ = await activator(hold_timeout_s=0.5)
    replies = await asyncio.gather(*(post_rate(session, service) for _ in range(3)))
    for status, headers, body in replies:
        assert status == 503 and int(headers["retry-after"]) >= 1
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["type"].endswith(":hold-timeout")
    assert (await get_json(session, held_url(service)))["held"] == 0
    assert await metric(session, service, "openclaw_rating_activator_timed_out_total") == 3


async def test_a_full_queue_refuses_at_once_and_keeps_what_it_holds(
    activator: ActivatorFactory,
    endpoints_file: Path,
    rating_pod: RatingPodFactory,
    session: aiohttp.ClientSession,
) -> None:
    service, _ = await activator(max_held=2, hold_timeout_s=30)
    held = [asyncio.ensure_future(post_rate(session, service)) for _ in range(2)]
    await held_now(session, service, 2)
    started = time.monotonic()
    status, headers, body = await post_rate(session, service)
    assert (status, json.loads(body)["type"].rsplit(":", 1)[1]) == (503, "held-full")
    assert "retry-after" in headers and time.monotonic() - started < 5.0
    pod = await asyncio.to_thread(rating_pod)
    await write(endpoints_file, f"127.0.0.1:{pod.ports['public']}\n")
    assert [reply[0] for reply in await asyncio.gather(*held)] == [200, 200]
    assert await metric(session, service, "openclaw_rating_activator_refused_full_total") == 1


async def test_a_client_that_hangs_up_while_held_is_never_forwarded(
    activator: ActivatorFactory,
    endpoints_file: Path,
    rating_pod: RatingPodFactory,
    session: aiohttp.ClientSession,
) -> None:
    service, _ = await activator(hold_timeout_s=30)
    pending = asyncio.ensure_future(post_rate(session, service))
    await held_now(session, service, 1)
    pending.cancel()  # the client hangs up
    await asyncio.gather(pending, return_exceptions=True)
    await held_now(session, service, 0)
    pod = await asyncio.to_thread(rating_pod)
    await write(endpoints_file, f"127.0.0.1:{pod.ports['public']}\n")
    await asyncio.sleep(0.5)  # the file is read every 0.1 s: the pod is known by now
    assert (await get_json(session, held_url(service)))["pods_ready"] == 1
    forwarded = 'openclaw_rating_activator_forwarded_total{held="true"}'
    assert await metric(session, service, forwarded) == 0
    bucket = await get_json(session, f"http://127.0.0.1:{pod.ports['admin']}/v1/bucket")
    assert bucket["granted_total"] + bucket["denied_total"] == 0  # the pod saw nothing


async def test_a_request_the_activator_cannot_parse_gets_its_own_400_problem_json(
    activator: ActivatorFactory,
) -> None:
    service, _ = await activator(hold_timeout_s=30)
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(b"POST /v1/rate HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/problem+json" in head.lower()


async def test_held_long_polls_until_the_queue_turns_active(
    activator: ActivatorFactory, session: aiohttp.ClientSession
) -> None:
    service, _ = await activator(hold_timeout_s=30)
    before = await get_json(session, held_url(service))
    assert (before["held"], before["schema"]) == (0, "openclaw.activator/v1")
    waiting = asyncio.ensure_future(
        get_json(session, f"{held_url(service)}?version={before['version']}&wait=20")
    )
    await asyncio.sleep(0.3)
    assert not waiting.done()  # nothing changed: the answer waits
    request = asyncio.ensure_future(post_rate(session, service))
    after = await asyncio.wait_for(waiting, 5.0)
    assert after["held"] == 1 and after["version"] != before["version"]
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)


async def test_a_pod_that_fails_mid_request_gives_502_problem_json(
    activator: ActivatorFactory, endpoints_file: Path, session: aiohttp.ClientSession
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()  # the request arrived; no answer ever comes

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await write(endpoints_file, f"127.0.0.1:{port}\n")
    service, _ = await activator(hold_timeout_s=5)
    try:
        status, headers, body = await post_rate(session, service)
    finally:
        server.close()
    assert status == 502 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["type"].endswith(":pod-failed")


async def test_a_listed_pod_that_refuses_connections_is_skipped_for_one_that_answers(
    activator: ActivatorFactory,
    endpoints_file: Path,
    rating_pod: RatingPodFactory,
    session: aiohttp.ClientSession,
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        refused = closed.getsockname()[1]
    pod = await asyncio.to_thread(rating_pod)
    await write(endpoints_file, f"127.0.0.1:{refused}\n127.0.0.1:{pod.ports['public']}\n")
    service, _ = await activator(hold_timeout_s=5)
    replies = [await post_rate(session, service) for _ in range(4)]
    assert [status for status, _, _ in replies] == [200] * 4
    assert (
        await metric(
            session, service, 'openclaw_rating_activator_pod_errors_total{kind="unreachable"}'
        )
        >= 1
    )


async def test_bodies_held_past_max_held_bytes_are_refused_at_once(
    activator: ActivatorFactory, session: aiohttp.ClientSession
) -> None:
    service, _ = await activator(
        hold_timeout_s=30, extra=("--max-body-bytes", "1024", "--max-held-bytes", "1500")
    )
    body = b'{"items": [], "pad": "' + b"x" * 900 + b'"}'
    url = service.public_url + "/v1/rate"

    async def post() -> int:
        async with session.post(url, data=body) as response:
            return response.status

    first = asyncio.ensure_future(post())
    await held_now(session, service, 1)
    assert await post() == 503  # its body and the held one's would pass 1500 bytes
    assert (await get_json(session, held_url(service)))["held"] == 1
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)

"""The load generator's outcomes, its offered rate, a load stopped early, and the
offered-rate endpoint that the floor fleet's `metrics-api` trigger reads (real HTTP
servers on 127.0.0.1)."""

from __future__ import annotations

import http.server
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest

from e2e.cluster.offered import OfferedRates
from e2e.experiment.balanced_load import (
    Load,
    Phase,
    burst,
    lagging,
    offered_per_s,
    outcome_of_failure,
)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (aiohttp.ServerDisconnectedError(), "lost"),
        (aiohttp.ClientConnectionResetError("reset"), "lost"),
        (aiohttp.ClientPayloadError("cut short"), "lost"),
        (ConnectionResetError(104, "reset by peer"), "lost"),
        (TimeoutError(), "timeout"),
        (aiohttp.ServerTimeoutError(), "timeout"),
        (aiohttp.ClientConnectorError(None, OSError(111, "refused")), "unreachable"),  # type: ignore[arg-type]
        (aiohttp.InvalidURL("x"), "error"),
    ],
    ids=["eof", "reset", "payload", "os-reset", "timeout", "read-timeout", "refused", "url"],
)
def test_a_request_sent_and_never_answered_is_lost(error: BaseException, outcome: str) -> None:
    assert outcome_of_failure(error) == outcome


@pytest.mark.parametrize(
    ("elapsed_s", "rate"),
    [(0.0, 0.0), (14.9, 0.0), (15.0, 123.0), (89.9, 123.0), (90.0, 0.0), (500.0, 0.0)],
)
def test_offered_rate_follows_the_phases(elapsed_s: float, rate: float) -> None:
    assert offered_per_s(burst(120.0, 123.0), elapsed_s) == rate


@pytest.fixture
def rates() -> Iterator[OfferedRates]:
    server = OfferedRates(port=0).start()
    yield server
    server.stop()


def get(server: OfferedRates, path: str) -> tuple[int, str, dict[str, object]]:
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], json.load(error)


def test_endpoint_answers_each_fleets_rate_now(rates: OfferedRates) -> None:
    now = {"floor": 0.0}
    rates.register("floor", lambda: now["floor"])
    assert get(rates, "/v1/offered/floor")[2] == {"fleet": "floor", "offered_per_s": 0.0}
    now["floor"] = 123.0
    status, kind, body = get(rates, "/v1/offered/floor")
    assert (status, kind, body["offered_per_s"]) == (200, "application/json", 123.0)


@pytest.mark.parametrize("path", ["/v1/offered/nobody", "/v1/offered/", "/metrics"])
def test_endpoint_refuses_an_unknown_fleet_with_a_problem(rates: OfferedRates, path: str) -> None:
    rates.register("floor", lambda: 1.0)
    status, kind, body = get(rates, path)
    assert (status, kind, body["status"]) == (404, "application/problem+json", 404)


class Statuses(http.server.BaseHTTPRequestHandler):
    """Answers POST /v1/rate with 200, 503, 429 in turn."""

    turn = itertools.count()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        status = (200, 503, 429)[next(self.turn) % 3]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def statuses_server() -> Iterator[tuple[str, int]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Statuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "127.0.0.1", server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_stopped_load_sends_no_more_and_counts_each_status(
    statuses_server: tuple[str, int],
) -> None:
    started = time.monotonic()
    load = Load(lambda: [statuses_server], [Phase("on", 0.0, 60.0, 40.0)], started).start()
    time.sleep(1.5)
    load.stop()
    assert not load.thread.is_alive()
    assert time.monotonic() - started < 10
    sent = sum(load.tally.totals().values())
    assert 30 <= sent <= 100, load.tally.totals()
    assert sum(load.tally.statuses.values()) == sent
    assert set(load.tally.statuses) == {200, 503, 429}
    assert load.tally.server_errors() == load.tally.statuses[503] > 0
    assert load.tally.totals()["refused"] == load.tally.statuses[429]


def test_a_lagging_balancer_sees_each_change_of_the_endpoints_late() -> None:
    now = [0.0]
    current = [[("10.244.0.1", 8080)]]
    seen = lagging(lambda: current[0], 2.0, clock=lambda: now[0])
    assert seen() == [("10.244.0.1", 8080)]
    now[0], current[0] = 1.0, [("10.244.0.2", 8080)]  # the old pod leaves at t=1
    assert seen() == [("10.244.0.1", 8080)]
    now[0] = 2.9
    assert seen() == [("10.244.0.1", 8080)]
    now[0] = 3.0
    assert seen() == [("10.244.0.2", 8080)]
    now[0] = 60.0
    assert seen() == [("10.244.0.2", 8080)]

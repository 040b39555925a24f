"""A real rating-api stopped under keep-alive load: every request sent gets its answer.

On SIGTERM the pod says `Connection: close` on every answer for `--shutdown-delay`, so
keep-alive clients reconnect (through a load balancer: to another pod) one request at a
time; when the servers stop, a request still arriving is answered instead of dropped.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.api.httpclient import request
from tests.api.test_limits import rate_request, read_response
from tests.api.test_server import refuses_connections, wait_for
from tests.conftest import RatingPodFactory
from tests.procs import Proc

CLIENTS = 20
SHUTDOWN_DELAY_S = "1"
ANSWERS_WHILE_DRAINING = 2
"""Each client's answers while draining before the load balancer takes the pod out: the
first says close, the second comes on a new connection."""
RUN_BOUND_S = 30.0
"""Only bounds a hang: each client stops once the pod has closed its connection."""


@dataclass
class Answer:
    status: int
    connection: str
    after_drain: bool
    """Sent once the pod had said it drains (`/readyz` 503)."""


@dataclass
class Tally:
    answers: list[Answer] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    """Requests written that got no complete answer: EOF or reset."""
    connections: int = 0


class KeepAliveClient(threading.Thread):
    """Sends POST /v1/rate in a loop on one connection, a new one after `Connection: close`.

    New connections stop once `routed_away` is set, as a load balancer sends them to other
    pods once it has taken this one out (Kubernetes does within the shutdown delay); the
    connections already open go on until the pod closes them.
    """

    def __init__(self, port: int, draining: threading.Event, routed_away: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.draining = draining
        self.routed_away = routed_away
        self.tally = Tally()

    def run(self) -> None:
        while not self.routed_away.is_set():
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                self.tally.connections += 1
                while self._exchange(sock):
                    pass

    def answers_while_draining(self) -> int:
        return sum(answer.after_drain for answer in list(self.tally.answers))

    def _exchange(self, sock: socket.socket) -> bool:
        """One request and its answer; False when the connection is done."""
        after_drain = self.draining.is_set()
        try:
            sock.sendall(rate_request())
            status, headers, body = read_response(sock)
        except OSError as exc:  # EOF before the head, a reset, a broken pipe
            self.tally.unanswered.append(repr(exc))
            return False
        if len(body) != int(headers.get("content-length", "-1")):
            self.tally.unanswered.append(f"a truncated body: {body!r}")
            return False
        connection = headers.get("connection", "")
        self.tally.answers.append(Answer(status, connection, after_drain))
        return connection.lower() != "close"


@pytest.fixture
def clients(rating_pod: RatingPodFactory) -> Iterator[tuple[Proc, list[KeepAliveClient]]]:
    pod = rating_pod(
        "--bucket-capacity", "1e9", "--bucket-rate", "1e9",
        "--shutdown-delay", SHUTDOWN_DELAY_S,
    )  # fmt: skip
    draining, routed_away = threading.Event(), threading.Event()
    started = [KeepAliveClient(pod.ports["public"], draining, routed_away) for _ in range(CLIENTS)]
    yield pod, started
    routed_away.set()
    for client in started:
        client.join(timeout=10)


def test_keep_alive_clients_lose_no_request_when_the_pod_stops(
    clients: tuple[Proc, list[KeepAliveClient]],
) -> None:
    pod, started = clients
    draining = started[0].draining
    for client in started:
        client.start()
    wait_for("every client has an answer", lambda: all(c.tally.answers for c in started))
    pod.signal(signal.SIGTERM)
    wait_for("/readyz answers 503", lambda: request(pod.url("public", "/readyz")).status == 503)
    draining.set()
    wait_for(
        f"every client has {ANSWERS_WHILE_DRAINING} answers while draining",
        lambda: all(c.answers_while_draining() >= ANSWERS_WHILE_DRAINING for c in started),
    )
    started[0].routed_away.set()  # well within the shutdown delay: they take milliseconds
    for client in started:
        client.join(timeout=RUN_BOUND_S)
        assert not client.is_alive(), "a client still sends after the pod stopped"
    assert pod.popen.wait(timeout=15) == 0

    unanswered = [problem for c in started for problem in c.tally.unanswered]
    assert unanswered == [], f"{len(unanswered)} requests sent got no answer: {unanswered[:5]}"
    answers = [answer for c in started for answer in c.tally.answers]
    assert {answer.status for answer in answers} == {200}
    after = [answer for answer in answers if answer.after_drain]
    kept_open = [answer for answer in after if answer.connection.lower() != "close"]
    assert kept_open == [], f"{len(kept_open)} of {len(after)} answers while draining kept alive"
    assert sum(c.tally.connections for c in started) > CLIENTS, "nobody reconnected"


def send_part_of_a_request(sock: socket.socket, part: str) -> bytes:
    """Nothing, or the request line and one header of a POST /v1/rate; returns the rest."""
    whole = rate_request()
    cut = 0 if part == "nothing" else whole.index(b"\r\n", whole.index(b"\r\n") + 2) + 2
    sock.sendall(whole[:cut])
    return whole[cut:]


@pytest.mark.parametrize(
    ("earlier_requests", "part"),
    [(0, "nothing"), (0, "half-a-head"), (2, "half-a-head")],
    ids=["connected-only", "first-request", "keep-alive"],
)
def test_a_request_still_arriving_when_the_servers_stop_is_answered(
    rating_pod: RatingPodFactory, earlier_requests: int, part: str
) -> None:
    pod = rating_pod("--shutdown-delay", "0.2")
    with socket.create_connection(("127.0.0.1", pod.ports["public"]), timeout=10) as sock:
        for _ in range(earlier_requests):
            sock.sendall(rate_request())
            assert read_response(sock)[0] == 200
        rest = send_part_of_a_request(sock, part)
        pod.signal(signal.SIGTERM)
        wait_for("the public port closes", lambda: refuses_connections(pod.ports["public"]))
        sock.sendall(rest)
        status, headers, _ = read_response(sock)
    assert (status, headers["connection"]) == (200, "close")
    assert pod.popen.wait(timeout=15) == 0


def test_a_connection_queued_unaccepted_when_the_servers_stop_is_answered(
    rating_pod: RatingPodFactory,
) -> None:
    """Frozen through the end of its shutdown delay, the pod wakes with its timers due:
    it stops listening before its loop gets to accept what the kernel queued meanwhile."""
    pod = rating_pod("--shutdown-delay", "0.3")
    pod.signal(signal.SIGTERM)
    wait_for("/readyz answers 503", lambda: request(pod.url("public", "/readyz")).status == 503)
    pod.signal(signal.SIGSTOP)
    try:
        time.sleep(0.6)  # past the delay and the server's next tick
        sock = socket.create_connection(("127.0.0.1", pod.ports["public"]), timeout=10)
        sock.sendall(rate_request())
    finally:
        pod.signal(signal.SIGCONT)
    with sock:
        status, headers, _ = read_response(sock)
    assert (status, headers["connection"]) == (200, "close")
    assert pod.popen.wait(timeout=15) == 0

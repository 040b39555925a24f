"""The load generator, a real child process against real rating pods, and the demo's
checks on what it reports."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from demo.load_control import LoadFailure, LoadGenerator
from harness import RatingApi, start, stop_all
from harness.child import Child
from harness.group import Group


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Child]]:
    """Three rating pods with buckets that never run dry, and one that refuses all but 2."""
    logs = tmp_path_factory.mktemp("pods")
    roomy = [RatingApi(bucket_rate=1000, bucket_capacity=1000) for _ in range(3)]
    tight = RatingApi(bucket_rate=0.5, bucket_capacity=2)
    started = [start(service, logs / f"pod-{i}.log") for i, service in enumerate([*roomy, tight])]
    yield started
    stop_all(started)


def requests_total(pod: Child) -> float:
    text = urllib_get(pod.url("admin", "/metrics"))
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("openclaw_rating_api_requests_total{"))  # fmt: skip


def urllib_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:
        return str(response.read().decode())


def address(pod: Child) -> str:
    return f"127.0.0.1:{pod.ports['public']}"


def test_it_sends_the_plan_round_robin_over_ready_pods_and_measures_the_answers(
    tmp_path: Path, pods: list[Child]
) -> None:
    roomy, tight = pods[:3], pods[3]
    before = [requests_total(pod) for pod in pods]
    load = LoadGenerator(Group(tmp_path / "logs"), tmp_path, ["direct", "prometheus"])
    load.publish("direct", [address(pod) for pod in roomy])
    load.publish("prometheus", [address(tight)])
    planned = [30, 60, 90, 0]
    load.start(planned, time.monotonic() + 0.5)
    deadline = time.monotonic() + 30
    while not load.done and time.monotonic() < deadline:
        time.sleep(0.2)
        load.poll()
    assert load.totals is not None
    assert load.totals["planned"] == 180
    assert load.totals["sent"] == {"direct": 180, "prometheus": 180}
    direct = [load.progress["direct"].lines[t] for t in range(4)]
    assert [line["planned"] for line in direct] == planned
    assert sum(line["sent"] for line in direct) == 180
    assert sum(line["ok"] for line in direct) == 180
    assert all(line["p99_ms"] > 0 for line in direct[:3]) and direct[3]["p99_ms"] is None
    spread = [requests_total(pod) - was for pod, was in zip(roomy, before, strict=False)]
    assert spread == [60.0, 60.0, 60.0]  # round robin
    refused = load.progress["prometheus"].lines
    assert sum(line["ok"] for line in refused.values()) <= 4  # 2 tokens, 0.5/s refill
    assert sum(line["r429"] for line in refused.values()) >= 176
    assert requests_total(tight) - before[3] == 180


def test_a_fleet_without_ready_pods_gets_errors_not_silence(tmp_path: Path) -> None:
    load = LoadGenerator(Group(tmp_path / "logs"), tmp_path, ["direct", "prometheus"])
    load.publish("direct", [])
    load.publish("prometheus", ["127.0.0.1:1"])  # nothing listens there
    load.start([20], time.monotonic() + 0.3)
    child = load.child
    assert child is not None
    child.popen.wait(20)
    load.poll()
    for fleet in ("direct", "prometheus"):
        line = load.progress[fleet].lines[0]
        assert (line["sent"], line["errors"], line["ok"]) == (20, 20, 0)
        assert line["lost"] == 0  # never written to a pod: not lost


@contextmanager
def hanging_up(how: str) -> Iterator[str]:
    """A real TCP server on 127.0.0.1 that reads each request whole and then, without a
    word, closes the connection (`eof`) or resets it (`reset`)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                received = b""
                with contextlib.suppress(OSError):
                    while b"}]}" not in received and (chunk := conn.recv(4096)):
                        received += chunk
                if how == "reset":  # linger 0: close sends RST
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        thread.join()
        server.close()


@pytest.mark.parametrize("how", ["eof", "reset"])
def test_a_request_a_pod_hangs_up_on_is_lost(tmp_path: Path, pods: list[Child], how: str) -> None:
    load = LoadGenerator(Group(tmp_path / "logs"), tmp_path, ["direct", "prometheus"])
    with hanging_up(how) as rude:
        load.publish("direct", [rude])
        load.publish("prometheus", [address(pods[0])])
        load.start([10, 10], time.monotonic() + 0.3)
        deadline = time.monotonic() + 20
        while not load.done and time.monotonic() < deadline:
            time.sleep(0.2)
            load.poll()
    assert load.totals is not None
    assert load.totals["lost"] == {"direct": 20, "prometheus": 0}
    lines = load.progress["direct"].lines.values()
    assert sum(line["lost"] for line in lines) == sum(line["errors"] for line in lines) == 20
    assert sum(line["ok"] for line in load.progress["prometheus"].lines.values()) == 20


def report(path: Path, lines: list[dict[str, object]]) -> None:
    with path.open("a") as file:
        for line in lines:
            file.write(json.dumps(line) + "\n")


def second(fleet: str, t_s: int, planned: int, sent: int, late: int) -> dict[str, object]:
    lag_ms = 1500.0 if late else 1.0
    return {"fleet": fleet, "t_s": t_s, "planned": planned, "sent": sent, "ok": sent, "r429": 0,
            "errors": 0, "lost": 0, "late": late, "p99_ms": 1.0, "lag_ms": lag_ms}  # fmt: skip


class Running:
    """Stands for a load generator that still runs."""

    running = True


def watched(tmp_path: Path) -> LoadGenerator:
    load = LoadGenerator(Group(tmp_path), tmp_path, ["direct"])
    load.child = Running()  # type: ignore[assignment]
    load._start_monotonic, load._seconds = time.monotonic(), 100
    return load


def test_a_generator_more_than_5_percent_late_fails_the_demo(tmp_path: Path) -> None:
    load = watched(tmp_path)
    report(load.report_path, [second("direct", 0, 100, 100, 5)])
    load.poll()  # 5 of 100 late: not more than 5 %
    report(load.report_path, [second("direct", 1, 100, 100, 6)])
    with pytest.raises(LoadFailure, match="fell behind its plan for the direct fleet: 11 of 200"):
        load.poll()


def test_a_generator_that_exits_before_its_end_fails_the_demo(tmp_path: Path) -> None:
    children = Group(tmp_path / "logs")
    load = LoadGenerator(children, tmp_path, ["direct"])
    load.publish("direct", [])
    (tmp_path / "load-plan.json").write_text("not json")
    load.child = children.spawn(
        "loadgen", [sys.executable, "-m", "demo.loadgen", str(tmp_path / "load-plan.json")]
    )
    load.child.popen.wait(20)
    with pytest.raises(LoadFailure, match=r"the load generator exited \(1\) before its end"):
        load.poll()

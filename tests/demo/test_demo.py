"""`python -m demo` end to end, briefly: three real fleets scaled by real loops.

A short step (45 s of load, the HPAs syncing every 3 s, Prometheus scraping every 2 s)
checks the outputs, that the direct and floor fleets' HPAs really added pods, and that every pod
the fleets' events name was a live `rating-api` process that is gone at the end. Three
more demos are stopped early: by Ctrl-C, by SIGTERM, and by the death of their load
generator. Each demo gets its own session (like a shell job), so that every process it
started can be found by its session id, whether the demo told us about it or not.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import matplotlib.image
import pytest

from harness import ROOT

pytestmark = pytest.mark.slow

SHORT = ["--duration", "45", "--sync", "3", "--scrape-interval", "2", "--scale-down-window", "5"]
FLEET_COLUMNS = ["metric", "desired", "running", "ready", "sent", "ok", "refused_429", "errors",
                 "lost", "p99_ms"]  # fmt: skip
FLEETS = ("direct", "prometheus", "floor")
PER_FLEET = [f"{fleet}_{name}" for fleet in FLEETS for name in FLEET_COLUMNS]
DEMO_COLUMNS = ["t_s", "phase", "offered_per_s", "oracle_replicas", *PER_FLEET]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def processes_in_session(session: int) -> dict[int, str]:
    """pid: command line of every live (non-zombie) process in `session`."""
    found = {}
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
            cmdline = (stat_path.parent / "cmdline").read_bytes()
        except OSError:
            continue  # it ended while we looked
        _command, rest = stat.rsplit(")", 1)
        state, _ppid, _pgrp, sid = rest.split()[:4]
        if int(sid) == session and state != "Z":
            found[int(stat_path.parent.name)] = cmdline.replace(b"\0", b" ").decode(
                errors="replace"
            )
    return found


@dataclass
class Watcher:
    """Every process seen in a session while it ran, looked at every 0.2 s."""

    session: int
    seen: dict[int, str] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            for pid, command in processes_in_session(self.session).items():
                if command:  # empty while a process exits
                    self.seen[pid] = command
            time.sleep(0.2)


def start_demo(out_dir: Path, *args: str, stdout: IO[str] | int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "demo", "--out", str(out_dir), *args],
        cwd=ROOT,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own session, like a shell job
    )


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    output: str
    out_dir: Path
    session: int
    seen: dict[int, str]

    def rows(self) -> list[dict[str, str]]:
        with (self.out_dir / "demo.csv").open(newline="") as file:
            return list(csv.DictReader(file))

    def events(self) -> list[dict[str, str]]:
        with (self.out_dir / "events.csv").open(newline="") as file:
            return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    out_dir = tmp_path_factory.mktemp("demo")
    with (out_dir / "stdout.txt").open("w") as stdout:
        demo = start_demo(out_dir, *SHORT, stdout=stdout)
    watcher = Watcher(demo.pid)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        demo.wait(timeout=120)
    finally:
        watcher.stop.set()
        thread.join()
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    output = (out_dir / "stdout.txt").read_text()
    yield DemoRun(demo.returncode, output, out_dir, demo.pid, watcher.seen)


def test_the_demo_ends_well_and_says_where_its_outputs_are(short_run: DemoRun) -> None:
    assert short_run.returncode == 0, short_run.output
    assert f"Outputs in {short_run.out_dir}/" in short_run.output
    assert (short_run.out_dir / "summary.txt").read_text() in short_run.output
    assert "the ScaledObject's behavior, scale-down window 5 s" in short_run.output


def test_the_csv_has_one_row_a_second_with_every_fleets_columns(short_run: DemoRun) -> None:
    with (short_run.out_dir / "demo.csv").open(newline="") as file:
        assert next(csv.reader(file)) == DEMO_COLUMNS
    rows = short_run.rows()
    assert [int(row["t_s"]) for row in rows] == list(range(45))
    assert {row["phase"] for row in rows} == {"idle", "step", "down"}
    planned = sum(int(row["offered_per_s"]) for row in rows)
    for fleet in ("direct", "prometheus", "floor"):
        assert sum(int(row[f"{fleet}_sent"]) for row in rows) == planned
        answers = sum(int(row[f"{fleet}_{name}"]) for row in rows
                      for name in ("ok", "refused_429", "errors"))  # fmt: skip
        assert answers == planned


def test_summary_json_has_the_documented_keys_and_agrees_with_the_csv(short_run: DemoRun) -> None:
    document = json.loads((short_run.out_dir / "summary.json").read_text())
    assert set(document) == {"scenario", "target_per_pod", "offered_planned", "offered_measured",
                             "fleets"}  # fmt: skip
    assert document["scenario"] == "step" and document["target_per_pod"] == 8.0
    assert set(document["fleets"]) == {"direct", "prometheus", "floor", "oracle"}
    rows = short_run.rows()
    assert document["offered_planned"] == sum(int(row["offered_per_s"]) for row in rows)
    assert document["offered_measured"] == document["offered_planned"]
    for name in ("direct", "prometheus", "floor"):
        figures = document["fleets"][name]
        assert set(figures) == {"refused", "answered", "replica_seconds",
                                "seconds_to_right_size", "max_replicas", "lost"}  # fmt: skip
        assert figures["answered"] == sum(int(row[f"{name}_ok"]) for row in rows)
        # rating-api says Connection: close while it drains: no request goes unanswered
        assert figures["lost"] == sum(int(row[f"{name}_lost"]) for row in rows) == 0
        assert figures["answered"] + figures["refused"] == document["offered_planned"]
    assert document["fleets"]["oracle"]["refused"] == 0


@pytest.mark.parametrize("fleet", ["direct", "floor"])
def test_the_hpa_really_added_pods(short_run: DemoRun, fleet: str) -> None:
    step = [row for row in short_run.rows() if row["phase"] == "step"]
    desired = [int(row[f"{fleet}_desired"]) for row in step]
    assert desired[0] == 3 and max(desired) >= 15  # the right size for 123/s, 5 % up tolerated
    assert max(int(row[f"{fleet}_ready"]) for row in step) >= 15
    summary = json.loads((short_run.out_dir / "summary.json").read_text())
    assert summary["fleets"][fleet]["max_replicas"] >= 15


def test_the_floor_reads_the_load_offered_at_that_instant(short_run: DemoRun) -> None:
    """Its metric is the plan's rate of the second it was read in: 0 or 123, nothing else."""
    rows = short_run.rows()
    read = {float(row["floor_metric"]) for row in rows if row["floor_metric"]}
    assert read <= {0.0, 123.0} and 123.0 in read
    assert "Direct against the floor: refused" in short_run.output


def test_every_pod_was_a_live_rating_api_process_and_is_gone(short_run: DemoRun) -> None:
    events = short_run.events()
    pods = {(e["fleet"], e["pod"]): int(e["pid"]) for e in events}
    assert len(pods) >= 3 * 3 + 2 * 12  # the starting fleets; the direct and floor steps up
    started_under_load = {e["pod"] for e in events if e["event"] == "start" and float(e["t_s"]) > 0}
    assert len(started_under_load) >= 2 * 12
    for (fleet, pod), pid in pods.items():
        kinds = [e["event"] for e in events if e["pod"] == pod and e["fleet"] == fleet]
        assert kinds[0] == "start" and kinds[-1] == "exit", (pod, kinds)
        assert "-m api" in short_run.seen.get(pid, ""), (pod, pid, short_run.seen.get(pid))
        assert f"--pod-name {pod}" in short_run.seen[pid]
    assert processes_in_session(short_run.session) == {}
    assert "Stopped all" in short_run.output


def test_the_chart_is_a_png(short_run: DemoRun) -> None:
    chart = short_run.out_dir / "demo.png"
    assert chart.read_bytes()[:8] == PNG_SIGNATURE
    height, width, _channels = matplotlib.image.imread(chart).shape
    assert width >= 1000 and height >= 600


def read_until(demo: subprocess.Popen[str], text: str, max_lines: int = 200) -> str:
    """The demo's output up to the first line with `text` (it prints one line a second)."""
    assert demo.stdout is not None
    seen: list[str] = []
    while len(seen) < max_lines and (line := demo.stdout.readline()):
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"no {text!r} in:\n{''.join(seen)}")


Stopping = dict[str, tuple[int, str, int, dict[int, str]]]  # name: (code, output, session, seen)


def stop_during_the_step(
    demo: subprocess.Popen[str], how: str
) -> tuple[int, str, int, dict[int, str]]:
    try:
        early = read_until(demo, "t=  4s")  # the step started at 3 s
        seen = processes_in_session(demo.pid)
        if how == "ctrl-c-to-the-job":
            os.killpg(demo.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        elif how == "sigterm-to-the-demo-alone":
            os.kill(demo.pid, signal.SIGTERM)
        else:  # the load generator dies
            os.kill(next(pid for pid, cmd in seen.items() if "demo.loadgen" in cmd), signal.SIGKILL)
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    return demo.returncode, early + rest, demo.pid, seen


@pytest.fixture(scope="module")
def stopped_early(tmp_path_factory: pytest.TempPathFactory) -> Stopping:
    """Three 30 s demos at once, each stopped a second into its step."""
    hows = ["ctrl-c-to-the-job", "sigterm-to-the-demo-alone", "loadgen-dies"]
    demos = {how: start_demo(tmp_path_factory.mktemp(how), "--duration", "30", "--sync", "3",
                             stdout=subprocess.PIPE) for how in hows}  # fmt: skip
    results: Stopping = {}
    threads = [
        threading.Thread(
            target=lambda h=how: results.update({h: stop_during_the_step(demos[h], h)})
        )
        for how in hows
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ("ctrl-c-to-the-job", 128 + signal.SIGINT),
        ("sigterm-to-the-demo-alone", 128 + signal.SIGTERM),
    ],
)
def test_a_signal_during_the_step_stops_every_process(
    stopped_early: Stopping, how: str, code: int
) -> None:
    returncode, output, session, seen = stopped_early[how]
    assert returncode == code, output
    assert "every process it started was stopped" in output
    assert sum("-m api" in cmd for cmd in seen.values()) >= 9, seen  # and maybe new ones
    assert processes_in_session(session) == {}


def test_a_load_generator_that_dies_fails_the_demo_and_stops_everything(
    stopped_early: Stopping,
) -> None:
    returncode, output, session, _seen = stopped_early["loadgen-dies"]
    assert returncode == 1, output
    assert "the demo failed: the load generator exited (-9) before its end" in output
    assert "every process it started was stopped" in output
    assert processes_in_session(session) == {}

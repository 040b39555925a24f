"""`python -m demo` end to end, briefly: real pods, scaler, Prometheus and hey.

Each run gets its own session (like a shell job), so that every process it started can
be found afterwards by its session id, whether the demo told us about it or not.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import matplotlib.image
import pytest

from tests.procs import ROOT

pytestmark = pytest.mark.slow

DEMO_COLUMNS = [
    "t_s", "phase", "offered_per_s", "answered_per_s", "denied_per_s",
    "direct_demand_per_s", "direct_target_per_pod", "direct_active", "direct_replicas",
    "prometheus_demand_per_s", "prometheus_fill_tokens", "prometheus_replicas",
]  # fmt: skip
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STEP_PER_S = 123.0  # the default step: 4.1x the 3 pods' refill of 10/s


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    output: str
    out_dir: Path
    session: int

    def rows(self) -> list[dict[str, str]]:
        with (self.out_dir / "demo.csv").open(newline="") as file:
            return list(csv.DictReader(file))


def processes_in_session(session: int) -> list[str]:
    """`pid command` of every live (non-zombie) process in `session`."""
    found = []
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue  # it ended while we looked
        command, rest = stat.rsplit(")", 1)
        state, _ppid, _pgrp, sid = rest.split()[:4]
        if int(sid) == session and state != "Z":
            found.append(f"{stat_path.parent.name} {command.split('(', 1)[1]}")
    return found


def start_demo(
    out_dir: Path, *args: str, env: dict[str, str] | None = None, stdout: IO[str] | int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "demo", "--out", str(out_dir), *args],
        cwd=ROOT,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,  # its own session, like a shell job
    )


Runs = dict[str, tuple[Path, list[str], dict[str, str] | None]]  # name: (out dir, args, env)


def run_demos(runs: Runs) -> dict[str, DemoRun]:
    """Run several demos at the same time (it saves a test minute); wait for all."""
    started = {}
    for name, (out_dir, args, env) in runs.items():
        out_dir.mkdir(parents=True)
        with (out_dir / "stdout.txt").open("w") as stdout:
            started[name] = start_demo(out_dir, *args, env=env, stdout=stdout)
    try:
        for demo in started.values():
            demo.wait(timeout=90)
    finally:
        for demo in started.values():
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)
    finished = {}
    for name, demo in started.items():
        out_dir = runs[name][0]
        output = (out_dir / "stdout.txt").read_text()
        finished[name] = DemoRun(demo.returncode, output, out_dir, session=demo.pid)
    return finished


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DemoRun]:
    """A 30 s demo (Prometheus scraping every 2 s, so that its path shows in that time),
    and beside it a 16 s one whose PATH has hey but no prometheus."""
    base = tmp_path_factory.mktemp("demo")
    bin_dir = base / "bin"
    bin_dir.mkdir()
    (bin_dir / "hey").symlink_to(shutil.which("hey") or "/usr/bin/hey")
    return run_demos(
        {
            "short": (base / "short", ["--duration", "30", "--scrape-interval", "2"], None),
            "no-prometheus": (base / "no-prometheus", ["--duration", "16"], {"PATH": str(bin_dir)}),
        }
    )


@pytest.fixture(scope="module")
def short_run(demo_runs: dict[str, DemoRun]) -> DemoRun:
    return demo_runs["short"]


def test_the_demo_ends_well_and_says_where_its_outputs_are(short_run: DemoRun) -> None:
    assert short_run.returncode == 0, short_run.output
    assert f"Outputs in {short_run.out_dir}/" in short_run.output
    assert "Until 85% of the step is reported" in short_run.output
    assert (short_run.out_dir / "summary.txt").read_text() in short_run.output


def test_the_csv_has_one_row_a_second_with_the_documented_columns(short_run: DemoRun) -> None:
    with (short_run.out_dir / "demo.csv").open(newline="") as file:
        header = next(csv.reader(file))
    assert header == DEMO_COLUMNS
    rows = short_run.rows()
    assert 29 <= len(rows) <= 32
    assert [row["phase"] for row in rows][:: len(rows) - 1] == ["idle", "down"]


def test_the_direct_path_saw_the_step(short_run: DemoRun) -> None:
    rows = short_run.rows()
    step = max(float(row["offered_per_s"]) for row in rows)
    assert step == pytest.approx(STEP_PER_S)
    during_step = [row for row in rows if row["phase"] == "step"]
    direct = [float(row["direct_demand_per_s"]) for row in during_step]
    assert max(direct) >= 0.85 * step
    assert max(int(row["direct_replicas"]) for row in during_step) >= 16  # ceil(123 / 8)
    assert all(float(row["direct_demand_per_s"]) < 1.0 for row in rows if row["phase"] == "idle")


def test_the_prometheus_path_answered_and_lagged(short_run: DemoRun) -> None:
    rows = short_run.rows()
    during_step = [row for row in rows if row["phase"] == "step"]
    prometheus = [
        float(r["prometheus_demand_per_s"]) for r in during_step if r["prometheus_demand_per_s"]
    ]
    assert prometheus, "Prometheus answered nothing during the step"
    assert 0.0 < max(prometheus) < 0.85 * STEP_PER_S  # rate()[1m] needs most of a minute


def test_the_chart_is_a_png(short_run: DemoRun) -> None:
    chart = short_run.out_dir / "demo.png"
    assert chart.read_bytes()[:8] == PNG_SIGNATURE
    height, width, _channels = matplotlib.image.imread(chart).shape
    assert width >= 800 and height >= 600


def test_nothing_is_left_running(short_run: DemoRun) -> None:
    assert processes_in_session(short_run.session) == []
    # 3 pods, the scaler, Prometheus and one hey per pod
    assert "Stopped all 8 processes it started" in short_run.output


def test_without_a_prometheus_binary_it_shows_the_direct_path_and_says_so(
    demo_runs: dict[str, DemoRun],
) -> None:
    run = demo_runs["no-prometheus"]
    assert run.returncode == 0, run.output
    assert "no `prometheus` binary found: showing the direct path only" in run.output
    rows = run.rows()
    assert all(row["prometheus_demand_per_s"] == "" for row in rows)
    assert max(float(row["direct_demand_per_s"]) for row in rows) >= 0.85 * STEP_PER_S
    assert (run.out_dir / "demo.png").read_bytes()[:8] == PNG_SIGNATURE
    assert processes_in_session(run.session) == []


def read_until(demo: subprocess.Popen[str], text: str, max_lines: int = 100) -> str:
    """The demo's output up to the first line with `text` (it prints one line a second)."""
    assert demo.stdout is not None
    seen: list[str] = []
    while len(seen) < max_lines and (line := demo.stdout.readline()):
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"no {text!r} in:\n{''.join(seen)}")


@pytest.mark.parametrize(
    ("signum", "whole_job"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c-to-the-job", "sigterm-to-the-demo-alone"],
)
def test_a_signal_during_the_step_stops_every_process(
    tmp_path: Path, signum: int, whole_job: bool
) -> None:
    args = ["--duration", "16", "--scrape-interval", "2"]
    demo = start_demo(tmp_path, *args, stdout=subprocess.PIPE)
    try:
        read_until(demo, "phase=step")  # pods, scaler, Prometheus and hey are all running
        assert len(processes_in_session(demo.pid)) >= 8
        if whole_job:
            os.killpg(demo.pid, signum)  # what a terminal does on Ctrl-C
        else:
            os.kill(demo.pid, signum)
        output, _ = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert demo.returncode == 128 + signum, output
    assert "every process it started was stopped" in output
    assert processes_in_session(demo.pid) == []

"""Throughput of `POST /v1/rate` against the framework's ceiling, on this machine.

(a) a bare Starlette endpoint that parses and echoes the JSON body (bench/_echo_app.py)
and (b) `POST /v1/rate` of rating-api with a bucket too large to refuse, both fed the
same 2-item batch. Each server runs pinned to core 0 and `wrk` to core 1; a and b take
turns for a few rounds, and the medians and the ratio b/a are printed as markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench._scaler_procs import cpu_seconds
from harness import HOST, Child, RatingApi, free_port, spawn, start, wait_http_ok

BATCH = orjson.dumps(
    {
        "items": [
            {"id": "agent-42", "up": 42, "down": 7},
            {"id": "skill-7", "stars": [25, 20, 75, 80, 60]},
        ]
    }
)
SERVER_CORE, LOAD_CORE = 0, 1
WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
"""
TARGET = 0.9


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    child: Child


@dataclass(frozen=True)
class Run:
    requests_per_s: float
    p99_ms: float
    cpu_us_per_request: float
    """CPU time of the server process per request: steadier than req/s on a busy machine."""


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: `make system-deps` installs it")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT.format(body=BATCH.decode()))
        with echo_server(Path(tmp)) as ceiling, rating_api(Path(tmp)) as ours:
            runs = measure(ceiling, ours, script, args)
    print_report(runs, args)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench api_throughput", description=__doc__)
    parser.add_argument(
        "--duration", type=int, default=3, help="seconds per measurement (default 3)"
    )
    parser.add_argument("--rounds", type=int, default=9, help="a/b rounds (default 9)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    return parser.parse_args(argv)


def measure(
    ceiling: Server, ours: Server, script: Path, args: argparse.Namespace
) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {ceiling.name: [], ours.name: []}
    for server in (ceiling, ours):
        with contextlib.suppress(Stalled):
            wrk(server, script, duration_s=1, connections=args.connections)  # warm-up
    for round_number in range(1, args.rounds + 1):
        pair = measure_pair(ceiling, ours, script, args)
        for server, run in zip((ceiling, ours), pair, strict=True):
            runs[server.name].append(run)
            print(
                f"round {round_number}: {server.name}: {run.requests_per_s:,.0f} req/s, "
                f"p99 {run.p99_ms:.2f} ms, {run.cpu_us_per_request:.1f} CPU us/request",
                file=sys.stderr,
                flush=True,
            )
    return runs


def measure_pair(
    ceiling: Server, ours: Server, script: Path, args: argparse.Namespace, attempts: int = 3
) -> tuple[Run, Run]:
    """a then b; the pair again if the machine stalled one of them (wrk timed out)."""
    for attempt in range(1, attempts + 1):
        try:
            return (
                wrk(ceiling, script, duration_s=args.duration, connections=args.connections),
                wrk(ours, script, duration_s=args.duration, connections=args.connections),
            )
        except Stalled as stall:
            print(f"attempt {attempt} of the round stalled: {stall}", file=sys.stderr)
    raise SystemExit(f"the machine stalled {attempts} times in a row: too busy to measure")


class Stalled(Exception):
    """wrk saw timeouts: something else held the CPU, the figures would not be ours."""


def wrk(server: Server, script: Path, *, duration_s: int, connections: int) -> Run:
    argv = [
        "taskset", "-c", str(LOAD_CORE), "wrk",
        "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", "-s", str(script), server.url,
    ]  # fmt: skip
    cpu_before_s = cpu_seconds(server.child.pid)
    output = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration_s + 30, check=True
    ).stdout
    cpu_s = cpu_seconds(server.child.pid) - cpu_before_s
    if "Non-2xx" in output:
        raise SystemExit(f"{server.name} answered errors, the figures would lie:\n{output}")
    requests = int(_find(r"(\d+) requests in", output))
    errors = re.search(r"Socket errors.*", output)
    if errors or requests == 0:
        raise Stalled(f"{server.name}: {requests} requests, {errors.group(0) if errors else ''}")
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    assert p99 is not None, output
    scale_to_ms = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return Run(
        requests_per_s=float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        p99_ms=float(p99.group(1)) * scale_to_ms,
        cpu_us_per_request=cpu_s / requests * 1e6,
    )


def _find(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise SystemExit(f"wrk said something unexpected:\n{text}")
    return found.group(1)


@contextmanager
def echo_server(log_dir: Path) -> Iterator[Server]:
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "bench._echo_app:app",
        "--host", HOST, "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--lifespan", "off",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    url = f"http://{HOST}:{port}/echo"
    child = spawn("echo", argv, log_dir / "echo.log", cpu=SERVER_CORE)
    try:
        wait_http_ok(url, child, body=BATCH)
        yield Server("a) bare Starlette echo", url, child)
    finally:
        child.stop()


@contextmanager
def rating_api(log_dir: Path) -> Iterator[Server]:
    api = RatingApi(bucket_capacity=1e9, bucket_rate=1e9, log_level="warning")
    child = start(api, log_dir / "rating-api.log", cpu=SERVER_CORE)
    try:
        yield Server("b) rating-api /v1/rate", child.url("public", "/v1/rate"), child)
    finally:
        child.stop()


def print_report(runs: dict[str, list[Run]], args: argparse.Namespace) -> None:
    ceiling_runs, ours_runs = runs.values()
    print(
        f"POST of a 2-item batch ({len(BATCH)} bytes); server on core {SERVER_CORE}, "
        f"`wrk -t1 -c{args.connections}` on core {LOAD_CORE}; "
        f"{args.rounds} rounds of {args.duration} s, a and b in turn; medians.\n"
    )
    print("| server | req/s | p99 ms | CPU us/request | req/s per round |")
    print("|---|---:|---:|---:|---|")
    for name, server_runs in runs.items():
        rates = ", ".join(f"{run.requests_per_s:,.0f}" for run in server_runs)
        print(
            f"| {name} | {_median(server_runs, 'requests_per_s'):,.0f} "
            f"| {_median(server_runs, 'p99_ms'):.2f} "
            f"| {_median(server_runs, 'cpu_us_per_request'):.1f} | {rates} |"
        )
    # Each round measures a and b side by side, so the ratio within a round is steadier
    # than the ratio of medians when other work comes and goes on the machine.
    paired = [
        b.requests_per_s / a.requests_per_s for a, b in zip(ceiling_runs, ours_runs, strict=True)
    ]
    cpu_paired = [
        a.cpu_us_per_request / b.cpu_us_per_request
        for a, b in zip(ceiling_runs, ours_runs, strict=True)
    ]
    ratio = statistics.median(paired)
    verdict = "meets" if ratio >= TARGET else "misses"
    print(
        f"\nratio b/a of req/s, median of the rounds = **{ratio:.3f}** ({verdict} the target of "
        f"{TARGET}); per round: {', '.join(f'{r:.2f}' for r in paired)}"
    )
    print(
        f"ratio of CPU time per request a/b, median of the rounds = "
        f"**{statistics.median(cpu_paired):.3f}**"
    )


def _median(runs: list[Run], field: str) -> float:
    return float(statistics.median(getattr(run, field) for run in runs))

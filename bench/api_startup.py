"""Start-up time of `rating-api`: process start to the first 200 from `/readyz`.

A new pod takes load once its readiness probe passes, so this is how soon a scale-up
helps. Each round starts, side by side and in turn, (a) the interpreter alone
(`python -c pass`), (b) a bare Starlette app with one `/readyz` route under uvicorn with
the settings of `rating-api` (uvloop, httptools, no lifespan), and (c) `python -m api`;
each on free loopback ports, `/readyz` polled every 5 ms from the spawn on (for (a), the
exit), then SIGTERM. Medians and 90th percentiles are printed as markdown.
"""

from __future__ import annotations

import argparse
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench._scaler_procs import cpu_seconds
from harness import HOST, ROOT, free_port

POLL_EVERY_S = 0.005
GIVE_UP_S = 30.0
TARGET_S = 1.0
READYZ = b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
BARE_APP = """\
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def readyz(request):
    return Response(b'{"status":"ready"}', media_type="application/json")

app = Starlette(routes=[Route("/readyz", readyz, methods=["GET"])])
uvicorn.run(app, host=%r, port=%d, loop="uvloop", http="httptools", lifespan="off",
            access_log=False, log_level="warning")
"""


@dataclass(frozen=True)
class Contender:
    name: str
    argv: Callable[[int, int], list[str]]
    """The command, given a public and an admin port."""
    serves: bool = True
    """False: timed to its exit, not to a `/readyz` answer."""
    cwd: Path = ROOT
    """Where it runs: `python -m api` imports the `api/` found here first."""


def _interpreter(port: int, admin_port: int) -> list[str]:
    return [sys.executable, "-c", "pass"]


def _bare_app(port: int, admin_port: int) -> list[str]:
    return [sys.executable, "-c", BARE_APP % (HOST, port)]


def _rating_api(port: int, admin_port: int) -> list[str]:
    flags = ["--host", HOST, "--port", str(port), "--admin-port", str(admin_port)]
    return [sys.executable, "-m", "api", *flags, "--log-level", "warning"]


CONTENDERS = (
    Contender("a) interpreter alone: python -c pass", _interpreter, serves=False),
    Contender("b) bare Starlette /readyz under uvicorn", _bare_app),
    Contender("c) rating-api: python -m api", _rating_api),
)


@dataclass(frozen=True)
class Start:
    wall_s: float
    cpu_s: float
    """The child's user plus system CPU time by then: steadier than wall time on a busy
    machine, in clock ticks (10 ms)."""


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    contenders = list(CONTENDERS)
    if args.also_checkout is not None:
        name = f"d) rating-api from {args.also_checkout}"
        contenders.append(Contender(name, _rating_api, cwd=args.also_checkout.resolve()))
    starts: dict[str, list[Start]] = {contender.name: [] for contender in contenders}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for round_number in range(1, args.runs + 1):
            for contender in contenders:
                starts[contender.name].append(time_start(contender, Path(tmp) / "child.log"))
            shown = ", ".join(f"{runs[-1].wall_s * 1e3:.0f}" for runs in starts.values())
            print(f"round {round_number}: {shown} ms", file=sys.stderr, flush=True)
    print_report(starts, args.runs)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench api_startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="starts of each (default 15)")
    parser.add_argument(
        "--also-checkout",
        type=Path,
        metavar="DIR",
        help="also time `python -m api` of the api/ in DIR (another version), in turn",
    )
    return parser.parse_args(argv)


def time_start(contender: Contender, log_path: Path) -> Start:
    """From spawning the command to its first `/readyz` 200 (or its exit)."""
    port, admin_port = free_port(), free_port()
    children_cpu_s = _children_cpu_s()
    with log_path.open("wb") as log:
        started_s = time.monotonic()
        child = subprocess.Popen(
            contender.argv(port, admin_port),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=contender.cwd,
        )  # fmt: skip
        try:
            if not contender.serves:
                child.wait(GIVE_UP_S)
                wall_s = time.monotonic() - started_s
                return Start(wall_s, _children_cpu_s() - children_cpu_s)
            while not _ready(port):
                if child.poll() is not None or time.monotonic() - started_s > GIVE_UP_S:
                    raise SystemExit(f"{contender.name} never got ready:\n{log_path.read_text()}")
                time.sleep(POLL_EVERY_S)
            return Start(time.monotonic() - started_s, cpu_seconds(child.pid))
        finally:
            _stop(child)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ready(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(READYZ)
            return sock.recv(64).startswith(b"HTTP/1.1 200 ")
    except OSError:
        return False


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def print_report(starts: dict[str, list[Start]], runs: int) -> None:
    print(
        f"Process spawn to the first 200 from GET /readyz (polled every "
        f"{POLL_EVERY_S * 1e3:.0f} ms), and the child's CPU time by then; "
        f"{runs} starts of each, in turn.\n"
    )
    print("| command | median ms | p90 ms | min ms | CPU ms, median |")
    print("|---|---:|---:|---:|---:|")
    for name, runs_of_one in starts.items():
        wall_s = [start.wall_s for start in runs_of_one]
        cpu_s = statistics.median(start.cpu_s for start in runs_of_one)
        print(
            f"| {name} | {statistics.median(wall_s) * 1e3:.0f} | {_p90(wall_s) * 1e3:.0f} "
            f"| {min(wall_s) * 1e3:.0f} | {cpu_s * 1e3:.0f} |"
        )
    bare, ours = (statistics.median(s.wall_s for s in starts[c.name]) for c in CONTENDERS[1:3])
    verdict = "meets" if ours <= TARGET_S else "misses"
    print(
        f"\nrating-api median **{ours * 1e3:.0f} ms** ({verdict} the target of "
        f"{TARGET_S:g} s), **{ours / bare:.2f}x** the bare app's"
    )


def _p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]

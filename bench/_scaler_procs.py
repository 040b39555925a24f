"""Shared parts of the scaler benchmarks: pinned child processes, percentiles, tables.

Everything binds to 127.0.0.1; every child process has a lifetime bound of its own
(`--seconds` for the fake pods) on top of being stopped when the benchmark ends.
"""

from __future__ import annotations

import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def raise_fd_limit(wanted: int) -> int:
    """Lift the soft open-file limit towards `wanted` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin_self(core: int) -> str:
    """Pin this process to one core when the machine has it; say what was done."""
    if not hasattr(os, "sched_setaffinity") or core not in os.sched_getaffinity(0):
        return "not pinned"
    os.sched_setaffinity(0, {core})
    return f"core {core}"


def pinned(argv: Sequence[str], core: int | None) -> list[str]:
    """`argv` under `taskset -c core`, or as is when taskset is missing or core is None."""
    if core is None or shutil.which("taskset") is None:
        return list(argv)
    return ["taskset", "-c", str(core), *argv]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a live process, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


@dataclass(frozen=True)
class FakePods:
    ports: list[int]
    process: subprocess.Popen[str]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)


@contextmanager
def fake_pods(
    count: int, *, demand_per_s: float, seconds: float, core: int | None
) -> Iterator[FakePods]:
    """`python -m harness.fakepods` in its own process; yields the ports it serves."""
    argv = [
        sys.executable, "-m", "harness.fakepods",
        "--count", str(count), "--demand", str(demand_per_s), "--seconds", str(seconds),
    ]  # fmt: skip
    wanted_fds = 2 * count + 256  # a listener and a connection per pod, and some spare

    def lift_limit() -> None:  # runs in the child before exec; the limit survives exec
        raise_fd_limit(wanted_fds)

    process = subprocess.Popen(
        pinned(argv, core), cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=lift_limit
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not re.fullmatch(r"\d+(,\d+)*", line):
            raise SystemExit(f"fake pods did not start (exit {process.poll()}): {line!r}")
        ports = [int(port) for port in line.split(",")]
        if len(ports) != count:
            raise SystemExit(f"asked for {count} fake pods, got {len(ports)}")
        yield FakePods(ports, process)
    finally:
        stop(process)


def stop(process: subprocess.Popen[str] | subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ScalerProcess:
    grpc_port: int
    http_port: int
    process: subprocess.Popen[bytes]

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    def get(self, path: str) -> bytes:
        url = f"http://{HOST}:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return bytes(response.read())

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)


@contextmanager
def scaler_process(
    *, core: int | None, poll_interval_s: float = 1.0, pod_timeout_s: float = 0.25
) -> Iterator[ScalerProcess]:
    """`python -m scaler` on loopback, ready (its /healthz answers) when this yields."""
    grpc_port, http_port = free_port(), free_port()
    argv = [
        sys.executable, "-m", "scaler", "--host", HOST,
        "--grpc-port", str(grpc_port), "--http-port", str(http_port),
        "--poll-interval", str(poll_interval_s), "--pod-timeout", str(pod_timeout_s),
        "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(pinned(argv, core), cwd=ROOT)
    scaler = ScalerProcess(grpc_port, http_port, process)
    try:
        _wait_healthy(scaler)
        yield scaler
    finally:
        stop(process)


def _wait_healthy(scaler: ScalerProcess, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if scaler.process.poll() is not None:
            raise SystemExit(f"the scaler exited with {scaler.process.returncode}")
        try:
            scaler.get("/healthz")
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the scaler's /healthz did not answer within {timeout_s} s")


def endpoints_metadata(ports: Sequence[int], **extra: str) -> dict[str, str]:
    """Trigger metadata naming `ports` on 127.0.0.1, as a ScaledObject would."""
    return {"endpoints": ",".join(f"{HOST}:{port}" for port in ports), **extra}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """A markdown table; `right` says which columns are numbers (right-aligned)."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}"


NOISE_PROBE = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
end = time.perf_counter() + float(sys.argv[2])
last, gaps = time.perf_counter(), []
while (now := time.perf_counter()) < end:
    if now - last > 0.001:
        gaps.append(now - last)
    last = now
print(sum(gaps), max(gaps, default=0.0))
"""


@dataclass(frozen=True)
class CoreNoise:
    core: int
    taken_share: float  # of the probe's time in gaps over 1 ms, when others ran
    longest_gap_s: float

    def __str__(self) -> str:
        return (
            f"core {self.core}: {self.taken_share:.0%} of the time taken by others, "
            f"longest gap {self.longest_gap_s * 1e3:.1f} ms"
        )


def measure_noise(cores: Sequence[int], seconds: float = 1.0) -> list[CoreNoise]:
    """How much of each core other tenants take: a spinning probe pinned to each core at
    once counts the gaps (over 1 ms) in which it did not run."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    probes = [
        subprocess.Popen(
            [sys.executable, "-c", NOISE_PROBE, str(core), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for core in cores
    ]
    noise = []
    for core, probe in zip(cores, probes, strict=True):
        out, _ = probe.communicate(timeout=seconds + 30)
        lost_s, longest_s = (float(value) for value in out.split())
        noise.append(CoreNoise(core, lost_s / seconds, longest_s))
    return noise


def cpu_noise(cores: Sequence[int], seconds: float = 1.0) -> str:
    return "; ".join(str(core) for core in measure_noise(cores, seconds)) or "not measured"

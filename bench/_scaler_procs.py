"""Shared parts of the scaler benchmarks: pinned child processes, percentiles, tables.

Everything binds to 127.0.0.1; every child process has a lifetime bound of its own
(`--seconds` for the fake pods) on top of being stopped when the benchmark ends, and
dies with the benchmark (see `harness`).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import HOST, Child, RatingScaler, spawn, start, wait_log_line

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def pin_self(core: int) -> str:
    """Pin this process to one core when the machine has it; say what was done."""
    if not hasattr(os, "sched_setaffinity") or core not in os.sched_getaffinity(0):
        return "not pinned"
    os.sched_setaffinity(0, {core})
    return f"core {core}"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a live process, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


@dataclass(frozen=True)
class FakePods:
    ports: list[int]
    child: Child

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.child.pid)


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
    with tempfile.TemporaryDirectory(prefix="bench-pods-") as tmp:
        child = spawn("fake-pods", argv, Path(tmp) / "pods.log", open_files=wanted_fds, cpu=core)
        try:
            line = wait_log_line(child, r"^\d+(,\d+)*$", timeout_s=60).group()
            ports = [int(port) for port in line.split(",")]
            if len(ports) != count:
                raise SystemExit(f"asked for {count} fake pods, got {len(ports)}")
            yield FakePods(ports, child)
        finally:
            child.stop()


@dataclass(frozen=True)
class ScalerProcess:
    service: RatingScaler
    child: Child

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.child.url("http", path), timeout=5) as response:
            return bytes(response.read())

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.child.pid)


@contextmanager
def scaler_process(
    *,
    core: int | None,
    poll_interval_s: float = 1.0,
    pod_timeout_s: float = 0.25,
    poll_workers: int | None = None,
) -> Iterator[ScalerProcess]:
    """`python -m scaler` on loopback, ready (its /healthz answers) when this yields;
    `poll_workers` None: its default (the CPUs it may run on)."""
    service = RatingScaler(
        poll_interval_s=poll_interval_s,
        pod_timeout_s=pod_timeout_s,
        log_level="warning",
        poll_workers=poll_workers,
    )
    with tempfile.TemporaryDirectory(prefix="bench-scaler-") as tmp:
        child = start(service, Path(tmp) / "scaler.log", cpu=core)
        try:
            yield ScalerProcess(service, child)
        finally:
            child.stop()


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

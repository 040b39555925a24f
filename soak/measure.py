"""Resident memory and open file descriptors of every process, read from /proc."""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import Child
from soak.under_test import Clock, pause

EDGE = 3  # samples at each end of the measured span


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    name: str
    pid: int
    rss_kib: int
    fds: int


def read_proc(pid: int) -> tuple[int, int] | None:
    """(VmRSS in KiB, open fds) of a live process; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]), fds
    return None  # a zombie has no VmRSS


@dataclass(frozen=True, slots=True)
class Usage:
    """One process from the end of warm-up to the end of the run."""

    name: str
    rss_start_kib: int
    rss_end_kib: int
    rss_max_kib: int
    fds_start: int
    fds_end: int
    restarts: int  # new processes under this name after warm-up

    @property
    def rss_growth_pct(self) -> float:
        return 100.0 * (self.rss_end_kib - self.rss_start_kib) / self.rss_start_kib

    @property
    def fd_growth(self) -> int:
        return self.fds_end - self.fds_start


@dataclass(slots=True)
class Sampler:
    samples: list[Sample] = field(default_factory=list)
    settled: dict[str, list[Sample]] = field(default_factory=dict)
    scaler_gone_at: float | None = None

    def sample(
        self, children: Sequence[Child], at: float, into: list[Sample] | None = None
    ) -> None:
        """One sample of each live child, into `samples` (or `into`)."""
        into = self.samples if into is None else into
        for child in children:
            got = read_proc(child.pid) if child.running else None
            if got is not None:
                into.append(Sample(at, child.name, child.pid, *got))

    async def sample_settled(
        self, children: Sequence[Child], clock: Clock, label: str, every_s: float = 0.2
    ) -> None:
        """`EDGE` quick samples under `label`, taken while every pod has been up a while."""
        into = self.settled.setdefault(label, [])
        for _ in range(EDGE):
            self.sample(children, clock(), into)
            await asyncio.sleep(every_s)

    async def run(
        self, children: Sequence[Child], clock: Clock, every_s: float, until: float
    ) -> None:
        """Sample every `every_s` and once more at `until`; note if the scaler ever died."""
        while (now := clock()) < until:
            self.sample(children, now)
            if not children[0].running and self.scaler_gone_at is None:
                self.scaler_gone_at = now
            await pause(every_s, clock, until)
        self.sample(children, clock())

    def usage(self, warmup_s: float, fds_between: tuple[str, str] | None = None) -> list[Usage]:
        """Per process name: the first samples after warm-up against the last ones (the
        median of `EDGE` samples each, so that one busy moment does not decide).

        With `fds_between`, open fds come from two `settled` samplings instead: under chaos
        a process holds one connection fewer for each pod that is away, so fds are only
        comparable at moments when every pod is up."""
        names = dict.fromkeys(sample.name for sample in self.samples)
        out = []
        for name in names:
            mine = [s for s in self.samples if s.name == name and s.at >= warmup_s]
            if len(mine) < 2:
                continue
            same = [s for s in mine if s.pid == mine[-1].pid]
            restarts = len(dict.fromkeys(s.pid for s in mine)) - 1
            edge = min(EDGE, len(same) // 2) or 1
            first, last = same[:edge], same[-edge:]
            if fds_between is not None:
                before, after = (self.settled.get(label, []) for label in fds_between)
                first_fds = [s for s in before if s.name == name and s.pid == last[-1].pid]
                last_fds = [s for s in after if s.name == name and s.pid == last[-1].pid]
                first, last = first_fds or first, last_fds or last
            out.append(
                Usage(
                    name,
                    _median(s.rss_kib for s in same[:edge]),
                    _median(s.rss_kib for s in same[-edge:]),
                    max(s.rss_kib for s in same),
                    _median(s.fds for s in first),
                    _median(s.fds for s in last),
                    restarts,
                )
            )
        return out


def _median(values: Iterable[int]) -> int:
    return int(statistics.median_low(values))

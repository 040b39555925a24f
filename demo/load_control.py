"""The load generator from the demo's side: its plan, the ready sets it follows, its
reports, and the checks that it kept to its plan.

The generator (`demo/loadgen.py`) runs as a child process; the demo tells it each
fleet's ready pods through one small JSON file per fleet and reads what it measured
from a JSON-lines report. A generator that exits before its last line, stops
reporting, or falls behind its plan (more than 5 % of the requests planned so far went
out more than 1 s late, or fewer were sent than planned) fails the demo (`LoadFailure`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.series import FleetName
from harness import Child
from harness.group import Group

BODY = '{"items":[{"id":"agent-planner","up":42,"down":7}]}'
REQUEST_TIMEOUT_S = 2.0
MAX_BEHIND = 0.05
BEHIND_FROM = 50  # requests planned before the share behind counts
STALL_S = 15.0  # a report this late after its second ended means the generator hangs


class LoadFailure(RuntimeError):
    """The load generator died, hung, or fell behind: the run measured nothing sound."""


@dataclass
class Progress:
    """Per fleet: what was planned and sent so far, and the lines not yet taken."""

    planned: int = 0
    sent: int = 0
    late: int = 0
    lag_ms: float = 0.0
    lines: dict[int, dict[str, Any]] = field(default_factory=dict)


class LoadGenerator:
    def __init__(self, children: Group, work_dir: Path, fleets: Sequence[FleetName]) -> None:
        self._children = children
        self._dir = work_dir
        self.fleets = list(fleets)
        self.report_path = work_dir / "load-report.jsonl"
        self.progress: dict[FleetName, Progress] = {name: Progress() for name in fleets}
        self.totals: dict[str, Any] | None = None
        self.child: Child | None = None
        self._offset = 0
        self._start_monotonic = 0.0
        self._seconds = 0
        self._planned: list[int] = []

    def ready_file(self, fleet: FleetName) -> Path:
        return self._dir / f"ready-{fleet}.json"

    def publish(self, fleet: FleetName, addresses: Sequence[str]) -> None:
        """The fleet's ready pods (public addresses), replaced in one rename."""
        path = self.ready_file(fleet)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps({"pods": list(addresses)}))
        partial.replace(path)

    def start(self, planned: Sequence[int], start_monotonic: float) -> Child:
        self._start_monotonic, self._seconds = start_monotonic, len(planned)
        self._planned = list(planned)
        plan = {
            "start_monotonic": start_monotonic,
            "planned": list(planned),
            "ready_files": {name: str(self.ready_file(name)) for name in self.fleets},
            "report": str(self.report_path),
            "timeout_s": REQUEST_TIMEOUT_S,
            "body": BODY,
        }
        plan_path = self._dir / "load-plan.json"
        plan_path.write_text(json.dumps(plan))
        self.child = self._children.spawn(
            "loadgen", [sys.executable, "-m", "demo.loadgen", str(plan_path)]
        )
        return self.child

    def offered_per_s(self, t_s: float) -> int:
        """What the generator offers each fleet at `t_s` s into its plan, requests/s."""
        second = math.floor(t_s)
        return self._planned[second] if 0 <= second < len(self._planned) else 0

    def poll(self) -> None:
        """Take the report's new lines; raise `LoadFailure` on any sign of trouble."""
        self._read_lines()
        self._check_behind()
        if self.totals is not None:
            return
        assert self.child is not None
        if not self.child.running and self.totals is None:
            self._read_lines()
            if self.totals is None:
                raise LoadFailure(
                    f"the load generator exited ({self.child.returncode}) before its end; "
                    f"{self.child.log_path}:\n{self.child.log_tail()}"
                )
        reported = min(len(p.lines) for p in self.progress.values()) if self.progress else 0
        behind_s = time.monotonic() - self._start_monotonic - min(reported, self._seconds)
        if behind_s > STALL_S + 1:
            raise LoadFailure(f"the load generator has not reported for {behind_s:.0f} s")

    def _read_lines(self) -> None:
        if not self.report_path.exists():
            return
        with self.report_path.open() as report:
            report.seek(self._offset)
            while (line := report.readline()).endswith("\n"):
                self._offset += len(line.encode())
                self._take(json.loads(line))

    def _take(self, line: dict[str, Any]) -> None:
        if line.get("done"):
            self.totals = line
            return
        progress = self.progress[line["fleet"]]  # a fleet the plan named
        progress.lines[int(line["t_s"])] = line
        progress.planned += int(line["planned"])
        progress.sent += int(line["sent"])
        progress.late += int(line["late"])
        progress.lag_ms = max(progress.lag_ms, float(line["lag_ms"]))

    def _check_behind(self) -> None:
        for name, p in self.progress.items():
            if p.planned >= BEHIND_FROM and p.late > MAX_BEHIND * p.planned:
                raise LoadFailure(
                    f"the load generator fell behind its plan for the {name} fleet: {p.late} "
                    f"of {p.planned} requests so far went out over 1 s late (at worst "
                    f"{p.lag_ms / 1000:.1f} s): this machine is too busy to measure"
                )
            if self.totals is not None and p.sent < p.planned:
                raise LoadFailure(f"the load generator sent {p.sent} of {p.planned} planned")

    def seconds(self, t_s: int) -> dict[FleetName, dict[str, Any]] | None:
        """Every fleet's line for second `t_s`, once all are in."""
        lines = {name: progress.lines.get(t_s) for name, progress in self.progress.items()}
        if any(line is None for line in lines.values()):
            return None
        return {name: line for name, line in lines.items() if line is not None}

    @property
    def done(self) -> bool:
        return self.totals is not None

"""Progress in the terminal: a compact table redrawn in place, or one plain line a second.

On a terminal the block is redrawn every second (ANSI: cursor up, clear to the end);
when stdout is a file or a pipe, each second is one plain line instead. Beside each
second's figures, each fleet's totals so far: requests refused and pod-seconds, so that
the direct fleet can be read against the floor (and Prometheus) as the run goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from demo.series import FLEETS, FleetName, FleetSecond, Row

CURSOR_UP_AND_CLEAR = "\x1b[{lines}F\x1b[J"
HEADER = (
    f"{'':<12}{'metric':>8}{'desired':>9}{'running':>9}{'ready':>7}"
    f"{'sent':>7}{'200':>6}{'429':>6}{'no ans.':>8}{'p99 ms':>8}"
    f"{'refused':>9}{'pod-s':>7}"
)


def number(value: float | None, width: int, decimals: int = 1) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{decimals}f}"


@dataclass
class Totals:
    """One fleet so far: requests refused (429 or no answer), pod-seconds (running pods,
    one sample a second)."""

    refused: int = 0
    pod_s: int = 0

    def add(self, fleet: FleetSecond) -> None:
        self.refused += fleet.refused_429 + fleet.errors
        self.pod_s += fleet.running


class LiveView:
    def __init__(
        self,
        out: TextIO,
        *,
        redraw: bool,
        duration_s: int,
        fleets: Sequence[FleetName] = FLEETS,
    ) -> None:
        self._out = out
        self._redraw = redraw
        self._duration_s = duration_s
        self._drawn_lines = 0
        self.fleets = tuple(fleets)
        self.totals: dict[FleetName, Totals] = {name: Totals() for name in self.fleets}

    def show(self, row: Row) -> None:
        for name in self.fleets:
            self.totals[name].add(row.fleets[name])
        if self._redraw:
            block = self.block(row)
            if self._drawn_lines:
                self._out.write(CURSOR_UP_AND_CLEAR.format(lines=self._drawn_lines))
            self._out.write("\n".join(block) + "\n")
            self._drawn_lines = len(block)
        else:
            self._out.write(self.line(row) + "\n")
        self._out.flush()

    def block(self, row: Row) -> list[str]:
        lines = [
            f"{row.t_s + 1:4d} s of {self._duration_s}   {row.phase}: {row.offered_per_s} req/s "
            f"offered, the oracle needs {row.oracle_replicas} pods",
            HEADER,
        ]
        for name in self.fleets:
            totals = self.totals[name]
            lines.append(
                f"{name:<12}{self.cells(row.fleets[name])}{totals.refused:>9}{totals.pod_s:>7}"
            )
        lines.append(self.against_floor())
        return lines

    def against_floor(self) -> str:
        """Direct against the floor so far (the forecast against the short floor),
        refused and pod-seconds."""
        fast, slow = (
            ("forecast", "floor-short") if "forecast" in self.totals else ("direct", "floor")
        )
        if fast not in self.totals or slow not in self.totals:
            return ""
        a, b = self.totals[fast], self.totals[slow]
        return (
            f"so far, {fast} vs {slow}: refused {a.refused} vs {b.refused}, "
            f"pod-s {a.pod_s} vs {b.pod_s}"
        )

    @staticmethod
    def cells(fleet: FleetSecond) -> str:
        return (
            f"{number(fleet.metric, 8)}{fleet.desired:>9}{fleet.running:>9}{fleet.ready:>7}"
            f"{fleet.sent:>7}{fleet.ok:>6}{fleet.refused_429:>6}{fleet.errors:>8}"
            f"{number(fleet.p99_ms, 8)}"
        )

    def line(self, row: Row) -> str:
        parts = [
            f"t={row.t_s:3d}s {row.phase} offered={row.offered_per_s} oracle={row.oracle_replicas}"
        ]
        for name in self.fleets:
            f = row.fleets[name]
            parts.append(
                f"{name}: metric={number(f.metric, 0)} desired={f.desired} running={f.running} "
                f"ready={f.ready} sent={f.sent} 200={f.ok} 429={f.refused_429} "
                f"errors={f.errors} lost={f.lost} p99={number(f.p99_ms, 0)}ms "
                f"refused_so_far={self.totals[name].refused} pod_s={self.totals[name].pod_s}"
            )
        return " | ".join(parts)

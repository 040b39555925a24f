"""Progress in the terminal: a compact table redrawn in place, or one plain line a second.

On a terminal the block is redrawn every second (ANSI: cursor up, clear to the end);
when stdout is a file or a pipe, each second is one plain line instead.
"""

from __future__ import annotations

from typing import TextIO

from demo.series import FLEETS, FleetSecond, Row

CURSOR_UP_AND_CLEAR = "\x1b[{lines}F\x1b[J"
HEADER = (
    f"{'':<12}{'metric':>8}{'desired':>9}{'running':>9}{'ready':>7}"
    f"{'sent':>7}{'200':>6}{'429':>6}{'no ans.':>8}{'p99 ms':>8}"
)


def number(value: float | None, width: int, decimals: int = 1) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{decimals}f}"


class LiveView:
    def __init__(self, out: TextIO, *, redraw: bool, duration_s: int) -> None:
        self._out = out
        self._redraw = redraw
        self._duration_s = duration_s
        self._drawn_lines = 0

    def show(self, row: Row) -> None:
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
        for name in FLEETS:
            lines.append(f"{name:<12}{self.cells(row.fleets[name])}")
        return lines

    @staticmethod
    def cells(fleet: FleetSecond) -> str:
        return (
            f"{number(fleet.metric, 8)}{fleet.desired:>9}{fleet.running:>9}{fleet.ready:>7}"
            f"{fleet.sent:>7}{fleet.ok:>6}{fleet.refused_429:>6}{fleet.errors:>8}"
            f"{number(fleet.p99_ms, 8)}"
        )

    @staticmethod
    def line(row: Row) -> str:
        parts = [
            f"t={row.t_s:3d}s {row.phase} offered={row.offered_per_s} oracle={row.oracle_replicas}"
        ]
        for name in FLEETS:
            f = row.fleets[name]
            parts.append(
                f"{name}: metric={number(f.metric, 0)} desired={f.desired} running={f.running} "
                f"ready={f.ready} sent={f.sent} 200={f.ok} 429={f.refused_429} "
                f"errors={f.errors} p99={number(f.p99_ms, 0)}ms"
            )
        return " | ".join(parts)

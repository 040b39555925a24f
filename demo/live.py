"""Progress in the terminal: a compact table redrawn in place, or plain lines.

On a terminal the block is redrawn every second (ANSI: cursor up, clear to the end);
when stdout is a file or a pipe, each reading is one plain line instead.
"""

from __future__ import annotations

from typing import TextIO

from demo.series import Sample, Summary

CURSOR_UP_AND_CLEAR = "\x1b[{lines}F\x1b[J"


def number(value: float | None, width: int, decimals: int = 1) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{decimals}f}"


def count(value: int | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}d}"


def yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def seconds(value: float | None) -> str:
    return "not yet" if value is None else f"after {value:.1f} s"


class LiveView:
    """Shows each new sample; `prometheus` False drops that path's rows."""

    def __init__(self, out: TextIO, *, redraw: bool, prometheus: bool, duration_s: float) -> None:
        self._out = out
        self._redraw = redraw
        self._prometheus = prometheus
        self._duration_s = duration_s
        self._drawn_lines = 0

    def show(self, sample: Sample, summary: Summary | None) -> None:
        """`summary` says what each path reached so far (None before the step)."""
        if self._redraw:
            block = self.block(sample, summary)
            if self._drawn_lines:
                self._out.write(CURSOR_UP_AND_CLEAR.format(lines=self._drawn_lines))
            self._out.write("\n".join(block) + "\n")
            self._drawn_lines = len(block)
        else:
            self._out.write(self.line(sample) + "\n")
        self._out.flush()

    def block(self, sample: Sample, summary: Summary | None) -> list[str]:
        fill = number(sample.prometheus_fill_tokens, 0)
        lines = [
            f"{sample.t_s:5.0f} s of {self._duration_s:g}   phase: {sample.phase}",
            f"{'':<26}{'demand/s':>10}{'replicas':>10}",
            f"{'offered load (hey)':<26}{number(sample.offered_per_s, 10)}{'':>10}",
            f"{'direct: scaler over gRPC':<26}{number(sample.direct_demand_per_s, 10)}"
            f"{count(sample.direct_replicas, 10)}   active: {yes_no(sample.direct_active)}",
        ]
        if self._prometheus:
            lines.append(
                f"{'Prometheus: rate()[1m]':<26}{number(sample.prometheus_demand_per_s, 10)}"
                f"{count(sample.prometheus_replicas, 10)}   fill gauge: {fill} tokens"
            )
        lines.append(
            f"at the pods: {number(sample.answered_per_s, 0)} answered/s, "
            f"{number(sample.denied_per_s, 0)} of them 429/s"
        )
        if summary is not None:
            lines += self.progress(summary)
        return lines

    def progress(self, summary: Summary) -> list[str]:
        reached = f"85 % of the step:   direct {seconds(summary.direct_reached_s)}"
        replicas = (
            f"{summary.right_replicas} replicas asked: direct {seconds(summary.direct_replicas_s)}"
        )
        if self._prometheus:
            reached += f", Prometheus {seconds(summary.prometheus_reached_s)}"
            replicas += f", Prometheus {seconds(summary.prometheus_replicas_s)}"
        return [reached, replicas]

    def line(self, sample: Sample) -> str:
        text = (
            f"t={sample.t_s:6.1f}s phase={sample.phase:<4} "
            f"offered={number(sample.offered_per_s, 0)}/s "
            f"direct={number(sample.direct_demand_per_s, 0)}/s "
            f"({count(sample.direct_replicas, 0)} replicas)"
        )
        if self._prometheus:
            text += (
                f" prometheus={number(sample.prometheus_demand_per_s, 0)}/s "
                f"({count(sample.prometheus_replicas, 0)} replicas) "
                f"fill={number(sample.prometheus_fill_tokens, 0)}"
            )
        return text + (
            f" answered={number(sample.answered_per_s, 0)}/s 429={number(sample.denied_per_s, 0)}/s"
        )

"""What the demo leaves behind: the CSV of every reading, the chart, the summary."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import astuple
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from demo.readers import DEMAND_QUERY, FILL_QUERY
from demo.series import COLUMNS, MAX_REPLICAS, MIN_REPLICAS, REACHED_SHARE, Sample, Summary

ADMITTED_COLOR, FILL_COLOR = "#2e8b57", "#2e8b57"
DIRECT_COLOR, PROMETHEUS_COLOR, LOAD_COLOR, DENIED_COLOR = (
    "#1f6fb4",
    "#e8750c",
    "#555555",
    "#c0392b",
)


def write_csv(samples: Sequence[Sample], path: Path) -> None:
    """One row per reading; empty cells where a path had no answer."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for sample in samples:
            writer.writerow(csv_cell(value) for value in astuple(sample))


def csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def summary_lines(summary: Summary, *, prometheus: bool) -> list[str]:
    """The figures worth remembering, as plain text lines."""

    def took(value: float | None) -> str:
        return "never (within the step)" if value is None else f"{value:5.1f} s"

    def times(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}x"

    lines = [
        f"Step: {summary.step_per_s:g} req/s offered at t={summary.step_start_s:.1f} s; "
        f"target {summary.target_per_pod:g}/s per pod, so {summary.right_replicas} replicas.",
        f"Until {REACHED_SHARE:.0%} of the step is reported "
        f"(>= {REACHED_SHARE * summary.step_per_s:g}/s):",
        f"  direct (scaler over gRPC)   {took(summary.direct_reached_s)}",
    ]
    if prometheus:
        lines += [
            f"  Prometheus (rate()[1m])     {took(summary.prometheus_reached_s)}"
            f"   ratio {times(summary.reached_ratio)}",
        ]
    lines += [
        f"Until the path asks for {summary.right_replicas} replicas or more:",
        f"  direct (scaler over gRPC)   {took(summary.direct_replicas_s)}",
    ]
    if prometheus:
        lines += [
            f"  Prometheus (rate()[1m])     {took(summary.prometheus_replicas_s)}"
            f"   ratio {times(summary.replicas_ratio)}",
        ]
    return lines


def series(samples: Sequence[Sample], name: str) -> list[float]:
    """One column as floats, NaN where there is no value (matplotlib leaves a gap)."""
    values = (getattr(sample, name) for sample in samples)
    return [float("nan") if value is None else float(value) for value in values]


def write_chart(
    samples: Sequence[Sample],
    summary: Summary,
    path: Path,
    *,
    title: str,
    prometheus: bool,
    full_tokens: float,
) -> None:
    """Panels over time: demand, desired replicas, and (with Prometheus) the fill gauge."""
    heights = [3.0, 2.0, 1.2] if prometheus else [3.0, 2.0]
    figure, axes = plt.subplots(
        len(heights), 1, sharex=True, figsize=(10, 1.6 * sum(heights)),
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    t = [sample.t_s for sample in samples]
    demand_panel(axes[0], t, samples, summary, prometheus)
    replicas_panel(axes[1], t, samples, summary, prometheus)
    if prometheus:
        fill_panel(axes[2], t, samples, full_tokens)
    for ax in axes:
        ax.axvspan(summary.step_start_s, summary.step_end_s, color="#eeeeee", zorder=0)
        ax.grid(True, color="#dddddd", linewidth=0.6)
    axes[-1].set_xlabel("seconds since the demo started (shaded: the step)")
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def demand_panel(
    ax: Axes, t: list[float], samples: Sequence[Sample], summary: Summary, prometheus: bool
) -> None:
    def line(name: str, label: str, color: str, **style: Any) -> None:
        ax.plot(t, series(samples, name), color=color, label=label, **style)

    offered = series(samples, "offered_per_s")
    ax.step(t, offered, where="post", color=LOAD_COLOR, linestyle="--", label="offered (hey)")
    answered = series(samples, "answered_per_s")
    denied = series(samples, "denied_per_s")
    ok = [a - d for a, d in zip(answered, denied, strict=True)]
    ax.plot(t, ok, color=ADMITTED_COLOR, linewidth=0.9, label="answered 200 (at the pods)")
    line("denied_per_s", "answered 429 (at the pods)", DENIED_COLOR, linewidth=0.9)
    line("direct_demand_per_s", "direct: the scaler's GetMetrics", DIRECT_COLOR, linewidth=2.2)
    if prometheus:
        line(
            "prometheus_demand_per_s",
            f"Prometheus: {DEMAND_QUERY}",
            PROMETHEUS_COLOR,
            linewidth=2.2,
        )
    threshold = REACHED_SHARE * summary.step_per_s
    ax.axhline(threshold, color="#888888", linewidth=0.8, linestyle=":")
    ax.text(
        t[0],
        threshold,
        f"{REACHED_SHARE:.0%} of the step",
        va="bottom",
        fontsize=8,
        color="#666666",
    )
    mark(ax, summary.step_start_s, summary.direct_reached_s, "direct", DIRECT_COLOR)
    if prometheus:
        mark(ax, summary.step_start_s, summary.prometheus_reached_s, "Prometheus", PROMETHEUS_COLOR)
    ax.set_ylabel("requests/s")
    ax.set_ylim(0, summary.step_per_s * 1.5)
    ax.legend(loc="upper left", fontsize=8, ncol=2, framealpha=0.9)
    ax.set_title("demand each path reports", fontsize=9, loc="left")


def replicas_panel(
    ax: Axes, t: list[float], samples: Sequence[Sample], summary: Summary, prometheus: bool
) -> None:
    def steps(name: str, label: str, color: str) -> None:
        ax.step(t, series(samples, name), where="post", color=color, linewidth=2.2, label=label)

    steps("direct_replicas", "direct", DIRECT_COLOR)
    if prometheus:
        steps("prometheus_replicas", "Prometheus", PROMETHEUS_COLOR)
    right = summary.right_replicas
    ax.axhline(right, color=LOAD_COLOR, linestyle="--", linewidth=0.9, label=f"needed: {right}")
    ax.set_ylim(0, MAX_REPLICAS + 1)
    ax.set_yticks([MIN_REPLICAS, *range(5, MAX_REPLICAS + 1, 5)])
    ax.set_ylabel("replicas")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    target = f"{summary.target_per_pod:g}"
    ax.set_title(
        f"replicas the HPA would ask for: ceil(demand / {target} per pod), 1 to {MAX_REPLICAS}",
        fontsize=9,
        loc="left",
    )


def fill_panel(ax: Axes, t: list[float], samples: Sequence[Sample], full_tokens: float) -> None:
    ax.plot(t, series(samples, "prometheus_fill_tokens"), color=FILL_COLOR, linewidth=1.5)
    ax.axhline(full_tokens, color=LOAD_COLOR, linestyle="--", linewidth=0.9)
    ax.set_ylim(0, full_tokens * 1.25)
    ax.set_ylabel("tokens")
    ax.set_title(
        f"the usual signal, {FILL_QUERY} (dashed: all buckets full): "
        "low under load, and at 0 it cannot say how many pods",
        fontsize=9,
        loc="left",
    )


def mark(ax: Axes, step_start_s: float, reached_s: float | None, name: str, color: str) -> None:
    """A vertical line where a path first reported 85 % of the step."""
    if reached_s is None:
        return
    at = step_start_s + reached_s
    ax.axvline(at, color=color, linewidth=1.0, linestyle="-.")
    ax.annotate(
        f"{name}: {reached_s:.1f} s",
        xy=(at, 0),
        xytext=(-12, 6),
        textcoords="offset points",
        color=color,
        fontsize=8,
        rotation=90,
        va="bottom",
    )

"""What the demo leaves behind: the CSV of every second, the fleets' pod events, the
chart, and the summary as text and as JSON."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import astuple
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from demo.fleet import FleetEvent
from demo.scenarios import Scenario
from demo.series import FLEET_COLUMNS, FLEET_NAMES, FleetName, Row, Summary, columns, right_size
from demo.triggers import DEMAND_QUERY
from harness.hpa import Behavior, HpaSpec, Policy, Rules

LOAD_COLOR, OK_COLOR, REFUSED_COLOR, ERROR_COLOR = "#555555", "#2e8b57", "#c0392b", "#8e44ad"
DESIRED_COLOR, READY_COLOR, RUNNING_COLOR, ORACLE_COLOR = "#1f6fb4", "#e8750c", "#9bbcd9", "#222222"
FORECAST_COLOR = "#8e44ad"
TITLES = {
    "direct": "direct: the rating-scaler over gRPC",
    "prometheus": f"Prometheus: {DEMAND_QUERY}",
    "floor": "floor: the load offered at that instant",
    "floor-short": "floor-short: the load offered, a short scale-down window",
    "forecast": "forecast: the rating-scaler, forecast: recurring, the short window",
}
LABELS = {
    "direct": "direct (gRPC)",
    "prometheus": "Prometheus",
    "floor": "floor (offered)",
    "floor-short": "floor-short",
    "forecast": "forecast",
    "oracle": "oracle",
}


def fleet_names(rows: Sequence[Row]) -> list[FleetName]:
    """The fleets of the run, in the usual order."""
    present = rows[0].fleets if rows else {}
    return [name for name in FLEET_NAMES if name in present]


def write_csv(rows: Sequence[Row], path: Path) -> None:
    """One row a second; empty cells where there was no value."""
    names = fleet_names(rows)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns(names))
        for row in rows:
            cells: list[object] = [row.t_s, row.phase, row.offered_per_s, row.oracle_replicas]
            for fleet in names:
                cells += astuple(row.fleets[fleet])[: len(FLEET_COLUMNS)]
            if "forecast" in names:
                cells.append(row.fleets["forecast"].forecast)
            writer.writerow(csv_cell(cell) for cell in cells)


def write_events(events: Sequence[FleetEvent], path: Path) -> None:
    """Every pod's start, readiness, termination and exit, with its pid."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["t_s", "fleet", "pod", "pid", "event", "detail"])
        for event in sorted(events, key=lambda e: e.t_s):
            writer.writerow(
                [f"{event.t_s:.3f}", event.fleet, event.pod, event.pid, event.kind, event.detail]
            )


def csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def describe_rules(rules: Rules) -> str:
    def policy(p: Policy) -> str:
        pods = f"{p.value} pod" + ("s" if p.value != 1 else "")
        amount = pods if p.kind == "Pods" else f"{p.value} %"
        return f"{amount} per {p.period_s:g} s"

    window = (
        f"{rules.stabilization_window_s:g} s window"
        if rules.stabilization_window_s
        else "no window"
    )
    if rules.select == "Disabled":
        return f"{window}, disabled"
    return f"{window}, {' or '.join(policy(p) for p in rules.policies)} ({rules.select})"


def describe_behavior(behavior: Behavior) -> str:
    up, down = describe_rules(behavior.scale_up), describe_rules(behavior.scale_down)
    return f"{behavior.name}: up {up}; down {down}"


ShortWindow = tuple[Sequence[str], Behavior]
"""The fleets with a short scale-down window, and their behavior."""


def summary_lines(summary: Summary, spec: HpaSpec, short: ShortWindow | None = None) -> list[str]:
    """The figures worth remembering, as plain text; `short`: the fleets whose behavior
    has a short scale-down window, if any, and that behavior."""
    planned = summary.offered_planned
    sent = ", ".join(f"{summary.fleets[name].sent} to {name}" for name in summary.fleet_names)
    lines = [
        f"Scenario: {summary.scenario.describe()}",
        f"HPA: a sync every {summary.sync_s:g} s (the first at t={summary.first_sync_s:.1f} s, "
        f"{summary.wait_for_sync_s:.1f} s after the load first rises), target "
        f"{summary.target_per_pod:g}/s per pod (AverageValue), {spec.min_replicas} to "
        f"{spec.max_replicas} replicas, tolerance up {spec.tolerance.up:g}, down "
        f"{spec.tolerance.down:g}",
        f"     {describe_behavior(spec.behavior)}",
        *([f"     {', '.join(short[0])}: {describe_behavior(short[1])}"] if short else []),
        f"Load: {planned} requests planned for each fleet; sent {sent}",
        "",
        f"{'':<16}{'refused':>9}{'answered':>10}{'replica-s':>11}{'right size':>12}"
        f"{'max pods':>10}",
    ]
    for name, fleet in summary.fleets.items():
        took = (
            "never"
            if fleet.seconds_to_right_size is None
            else f"{fleet.seconds_to_right_size:.1f} s"
        )
        lines.append(
            f"{LABELS[name]:<16}{fleet.refused:>9}{fleet.answered:>10}"
            f"{fleet.replica_seconds:>11.0f}{took:>12}{fleet.max_replicas:>10}"
        )
    if summary.scenario.name == "agents":
        lines += ["", *agent_lines(summary)]
    lines += ["", *ratio_lines(summary), *right_size_lines(summary, spec)]
    return lines


def agent_lines(summary: Summary) -> list[str]:
    """The scored part: from the end of the third burst, when a forecast knows the period."""

    def times(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    lines = [
        f"Scored from t={summary.scenario.scored_from_s} s (bursts 4-6):",
        f"{'':<16}{'refused':>9}{'replica-s':>11}{'vs oracle':>11}",
    ]
    for name, fleet in summary.fleets.items():
        cost = times(summary.ratio(name, "oracle", "scored_replica_seconds"))
        lines.append(
            f"{LABELS[name]:<16}{fleet.scored_refused:>9}"
            f"{fleet.scored_replica_seconds:>11.0f}{cost:>11}"
        )
    if {"forecast", "floor-short", "direct"} <= summary.fleets.keys():
        refused = times(summary.ratio("forecast", "floor-short", "scored_refused"))
        cost = times(summary.ratio("forecast", "direct", "scored_replica_seconds"))
        lines.append(
            f"Forecast: refused {refused} floor-short's (target <= 0.25x), pod-seconds "
            f"{cost} direct's (target <= 0.7x)"
        )
    return lines


def ratio_lines(summary: Summary) -> list[str]:
    def times(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    def took(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    names = summary.fleet_names
    errors = ", ".join(f"{summary.fleets[name].errors} {name}" for name in names)
    costs = ", ".join(
        f"{name} {times(summary.ratio(name, 'oracle', 'replica_seconds'))}" for name in names
    )
    lines = []
    if "prometheus" in names and "direct" in names:
        refused = times(summary.ratio("prometheus", "direct", "refused"))
        lines.append(
            f"Refused, Prometheus / direct: {refused} (refused: 429s, and requests without an "
            f"answer: {errors})"
        )
    else:
        lines.append(f"Refused: 429s, and requests without an answer: {errors}")
    for fast, slow in (("direct", "floor"), ("forecast", "direct")):
        if fast in names and slow in names:
            a, b = summary.fleets[fast], summary.fleets[slow]
            lines.append(
                f"{fast.capitalize()} against the {slow}: refused {a.refused} vs {b.refused} "
                f"({times(summary.ratio(fast, slow, 'refused'))}), pod-seconds "
                f"{a.replica_seconds:.0f} vs {b.replica_seconds:.0f} "
                f"({times(summary.ratio(fast, slow, 'replica_seconds'))}), right size "
                f"{took(a.seconds_to_right_size)} vs {took(b.seconds_to_right_size)}"
            )
    return [
        *lines,
        f"Replica-seconds against the oracle: {costs}",
        "Lost (sent, and the connection ended before any response; must be 0): "
        + ", ".join(f"{summary.fleets[name].lost} {name}" for name in names),
    ]


def right_size_lines(summary: Summary, spec: HpaSpec) -> list[str]:
    def size(rate_per_s: int) -> int:
        return right_size(rate_per_s, summary.target_per_pod, spec.tolerance, spec.max_replicas)

    def took(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    rises = summary.scenario.rises()
    sizes = ", ".join(f"{size(p.rate_per_s)} for {p.rate_per_s}/s" for p in rises)
    lines = [
        f"Right size: the slowest rise until its pods were ready ({sizes}: the oracle's "
        f"ceil(load / {summary.target_per_pod:g}), or fewer within the HPA's tolerance)"
    ]
    names = summary.fleet_names
    after = ", ".join(f"{name} {took(summary.fleets[name].after_sync_s)}" for name in names)
    lines.append(f"From the first sync after a rise until its right size was ready: {after}")
    if len(rises) > 1:
        for name in names:
            each = ", ".join(took(t) for t in summary.fleets[name].per_rise_s)
            lines.append(f"  each rise, {LABELS[name]}: {each}")
    return lines


def write_outputs(
    out_dir: Path,
    rows: Sequence[Row],
    summary: Summary,
    spec: HpaSpec,
    events: Sequence[FleetEvent],
    short: ShortWindow | None = None,
) -> list[str]:
    """Every file; returns the summary's lines."""
    lines = summary_lines(summary, spec, short)
    write_csv(rows, out_dir / "demo.csv")
    write_events(events, out_dir / "events.csv")
    (out_dir / "summary.txt").write_text("\n".join(lines) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary.as_json(), indent=2) + "\n")
    write_chart(rows, summary, spec, out_dir / "demo.png")
    return lines


def series(rows: Sequence[Row], fleet: FleetName, name: str) -> list[float]:
    values = (getattr(row.fleets[fleet], name) for row in rows)
    return [float("nan") if value is None else float(value) for value in values]


def write_chart(rows: Sequence[Row], summary: Summary, spec: HpaSpec, path: Path) -> None:
    """Per fleet, one column: requests (offered, 200, 429) over replicas (desired,
    ready, running, the oracle); the rises of the load shaded."""
    names = fleet_names(rows)
    figure, axes = plt.subplots(
        2,
        len(names),
        sharex=True,
        sharey="row",
        figsize=(6.5 * len(names), 7.2),
        gridspec_kw={"height_ratios": [3, 2.4]},
        squeeze=False,
    )
    t = [row.t_s + 0.5 for row in rows]
    top = max((row.offered_per_s for row in rows), default=1) * 1.35
    for column, fleet in enumerate(names):
        requests_panel(axes[0][column], t, rows, fleet, top)
        replicas_panel(axes[1][column], t, rows, fleet, spec.max_replicas)
        axes[0][column].set_title(fleet_title(summary, fleet), fontsize=9, loc="left")
        axes[1][column].set_xlabel("seconds since the load started (shaded: the step, the bursts)")
    for ax in axes.flat:
        for phase in summary.scenario.rises():
            ax.axvspan(phase.start_s, phase.end_s, color="#eeeeee", zorder=0)
        ax.grid(True, color="#dddddd", linewidth=0.6)
    axes[0][0].set_ylabel("requests/s")
    axes[1][0].set_ylabel("pods")
    figure.suptitle(chart_title(summary), fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def chart_title(summary: Summary) -> str:
    scenario: Scenario = summary.scenario
    fleets = len(summary.fleet_names)
    return (
        f"{fleets} fleets, the same load ({scenario.name}, seed {scenario.seed}), "
        f"target {summary.target_per_pod:g}/s per pod, HPA sync {summary.sync_s:g} s"
    )


def fleet_title(summary: Summary, fleet: FleetName) -> str:
    figures = summary.fleets[fleet]
    oracle = summary.fleets["oracle"].replica_seconds
    took = figures.seconds_to_right_size
    sized = "never at the right size" if took is None else f"right size after {took:.0f} s"
    return (
        f"{TITLES[fleet]}\nrefused {figures.refused}, {figures.replica_seconds:.0f} pod-s "
        f"({figures.replica_seconds / oracle:.2f}x the oracle), {sized}"
    )


def requests_panel(
    ax: Axes, t: list[float], rows: Sequence[Row], fleet: FleetName, top: float
) -> None:
    def line(name: str, label: str, color: str, width: float, style: str = "-") -> None:
        values = series(rows, fleet, name)
        ax.plot(t, values, color=color, linewidth=width, linestyle=style, label=label)

    offered = [row.offered_per_s for row in rows]
    ax.step(t, offered, where="mid", color=LOAD_COLOR, linestyle="--", label="offered (planned)")
    line("sent", "sent (measured)", LOAD_COLOR, 0.7)
    line("ok", "answered 200", OK_COLOR, 1.6)
    line("refused_429", "answered 429", REFUSED_COLOR, 1.6)
    if any(value > 0 for value in series(rows, fleet, "errors")):
        line("errors", "no answer", ERROR_COLOR, 1.0)
    line("metric", "the value its HPA reads", DESIRED_COLOR, 1.0, "-.")
    if any(not math.isnan(value) for value in series(rows, fleet, "forecast")):
        line("forecast", "forecast over the lead (scaler)", FORECAST_COLOR, 1.2, ":")
    ax.set_ylim(0, top)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)


def replicas_panel(
    ax: Axes, t: list[float], rows: Sequence[Row], fleet: FleetName, max_replicas: int
) -> None:
    oracle = [row.oracle_replicas for row in rows]
    ax.step(t, oracle, where="mid", color=ORACLE_COLOR, linestyle=":", linewidth=1.4,
            label="oracle: ceil(offered / target)")  # fmt: skip
    for column, color, width, label in (
        ("running", RUNNING_COLOR, 1.0, "running (cost)"),
        ("desired", DESIRED_COLOR, 2.0, "desired (HPA)"),
        ("ready", READY_COLOR, 2.0, "ready"),
    ):
        series_values = series(rows, fleet, column)
        ax.step(t, series_values, where="mid", color=color, linewidth=width, label=label)
    ax.set_ylim(0, max_replicas + 1)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)

"""The demo's outputs from known rows: the CSV, the events, the summary, the chart."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import matplotlib.image

from demo.fleet import FleetEvent
from demo.outputs import summary_lines, write_outputs
from demo.scenarios import Scenario, agents
from demo.series import FleetName, FleetState, PodLife, Row, Summary, make_row, summarize
from tests.demo.rows import SPEC, rows, summary

DEMO_COLUMNS = [
    "t_s", "phase", "offered_per_s", "oracle_replicas",
    *(f"{fleet}_{name}" for fleet in ("direct", "prometheus", "floor")
      for name in ("metric", "desired", "running", "ready", "sent", "ok", "refused_429",
                   "errors", "lost", "p99_ms")),
]  # fmt: skip
EVENTS = [
    FleetEvent(-1.0, "direct", "direct-0", 100, "start"),
    FleetEvent(-0.5, "direct", "direct-0", 100, "ready"),
    FleetEvent(41.0, "direct", "direct-0", 100, "exit", "stopped at the end: 0"),
]


def test_every_output_is_written(tmp_path: Path) -> None:
    write_outputs(tmp_path, rows(), summary(), SPEC, EVENTS)
    with (tmp_path / "demo.csv").open(newline="") as file:
        table = list(csv.reader(file))
    assert table[0] == DEMO_COLUMNS
    assert len(table) == 41
    first = dict(zip(table[0], table[1], strict=True))
    assert first["direct_p99_ms"] == "" and first["prometheus_metric"] == ""
    assert first["direct_desired"] == "3" and first["offered_per_s"] == "0"
    with (tmp_path / "events.csv").open(newline="") as file:
        events = list(csv.DictReader(file))
    assert [(e["pid"], e["event"]) for e in events] == [
        ("100", "start"),
        ("100", "ready"),
        ("100", "exit"),
    ]
    document = json.loads((tmp_path / "summary.json").read_text())
    assert document == summary().as_json()
    assert (tmp_path / "summary.txt").read_text().splitlines() == summary_lines(summary(), SPEC)
    height, width, _ = matplotlib.image.imread(tmp_path / "demo.png").shape
    assert width >= 1000 and height >= 600


def test_the_summary_says_which_behavior_and_gives_each_fleets_figures() -> None:
    text = "\n".join(summary_lines(summary(), SPEC))
    assert "the ScaledObject's behavior: up no window, 20 pods per 15 s (Max);" in text
    assert "down 300 s window, 25 % per 60 s or 1 pod per 60 s (Max)" in text
    assert "8/s per pod (AverageValue), 1 to 20 replicas, tolerance up 0.05, down 0.1" in text
    lines = {line.split()[0]: line.split() for line in text.splitlines() if line.split()}
    # direct: 28 s at 123/s with 3 pods until t=10 (6 s at 93 refused); 16 ready from t=10
    assert lines["direct"][2:] == ["558", "2886", "536", "6.0", "s", "16"]  # 3 x 40 + 13 x 32
    assert lines["Prometheus"][1:] == ["2604", "840", "120", "never", "3"]
    assert lines["oracle"][1:] == ["0", "3444", "460", "0.0", "s", "16"]
    assert "Refused, Prometheus / direct: 4.67x" in text
    # the floor: 16 ready from t=8, 4 s at 93 refused; 13 pods from t=7
    assert lines["floor"][2:] == ["372", "3072", "549", "4.0", "s", "16"]
    assert (
        "Direct against the floor: refused 558 vs 372 (1.50x), pod-seconds 536 vs 549 (0.98x), "
        "right size 6.0 s vs 4.0 s" in text
    )
    assert "Replica-seconds against the oracle: direct 1.17x, prometheus 0.26x, floor 1.19x" in text


def agent_rows() -> tuple[Scenario, list[Row], Summary]:
    """agents, seed 1: the forecast fleet refuses nothing after the third burst and gives
    its pods back; floor-short refuses 20 a burst; direct keeps 14 pods."""
    plan = agents(12, seed=1)
    scored = plan.scored_from_s
    built = []
    for t_s in range(plan.duration_s):
        rate = plan.rate_at(t_s)
        pods = 14 if rate > 12 else 2
        state = FleetState(metric=float(rate), desired=pods, running=pods, ready=pods, active=True)
        ahead = FleetState(
            float(rate), pods, pods, pods, True, forecast=90.0 if rate > 12 else None
        )
        refused = 20 if rate > 12 and plan.phase_at(t_s).start_s == t_s else 0
        cuts: tuple[tuple[FleetName, int], ...] = (
            ("direct", refused), ("floor-short", refused),
            ("forecast", refused if t_s < scored else 0),
        )  # fmt: skip
        lines: dict[FleetName, dict[str, Any]] = {
            name: {"sent": rate, "ok": rate - cut, "r429": cut, "errors": 0, "lost": 0,
                   "p99_ms": 2.0}
            for name, cut in cuts
        }  # fmt: skip
        states: dict[FleetName, FleetState] = {"direct": state, "floor-short": state,
                                               "forecast": ahead}  # fmt: skip
        built.append(make_row(plan, t_s, states, lines, target_per_pod=8.0, min_replicas=1,
                              max_replicas=20))  # fmt: skip
    direct = [PodLife(f"d-{i}", i, -1.0, 0.0, None, None) for i in range(14)]
    short = [PodLife(f"s-{i}", i, -1.0, 0.0, None, None) for i in range(2)]
    lives: dict[FleetName, list[PodLife]] = {"direct": direct, "floor-short": short,
                                             "forecast": short}  # fmt: skip
    return plan, built, summarize(built, plan, lives, spec=SPEC, sync_s=15.0, first_sync_s=7.5)


def test_agents_outputs_score_bursts_4_to_6_and_draw_the_forecast(tmp_path: Path) -> None:
    plan, built, found = agent_rows()
    short = (("floor-short", "forecast"), SPEC.behavior.with_scale_down_window(30))
    write_outputs(tmp_path, built, found, SPEC, [], short)
    with (tmp_path / "demo.csv").open(newline="") as file:
        header = next(csv.reader(file))
    assert header[-1] == "forecast_forecast_per_s" and "floor-short_refused_429" in header
    assert "prometheus_metric" not in header
    document = json.loads((tmp_path / "summary.json").read_text())
    assert document["scored_from_s"] == plan.scored_from_s
    forecast, short = document["fleets"]["forecast"], document["fleets"]["floor-short"]
    assert (forecast["scored_refused"], short["scored_refused"]) == (0, 60)
    scored_s = plan.duration_s - plan.scored_from_s
    assert document["fleets"]["direct"]["scored_replica_seconds"] == 14 * scored_s
    text = (tmp_path / "summary.txt").read_text()
    assert "Scored from t=" in text and "     floor-short, forecast: the ScaledObject's" in text
    assert "Forecast: refused 0.00x floor-short's (target <= 0.25x), pod-seconds 0.14x" in text
    height, width, _ = matplotlib.image.imread(tmp_path / "demo.png").shape
    assert width >= 1000 and height >= 600

"""The demo's outputs from known samples: CSV cells, the summary text, the chart."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from demo.report import summary_lines, write_chart, write_csv
from demo.series import COLUMNS, Sample, summarize
from tests.demo.samples import IDLE


def samples() -> list[Sample]:
    rising = [
        replace(IDLE, t_s=float(t), phase="step", offered_per_s=120.0,
                direct_demand_per_s=120.0 if t >= 11 else 0.0, direct_replicas=15 if t >= 11 else 1,
                prometheus_demand_per_s=min(120.0, 2.0 * (t - 10)), prometheus_fill_tokens=None)
        for t in range(10, 80)
    ]  # fmt: skip
    return [IDLE, *rising, replace(IDLE, t_s=80.0, phase="down")]


def test_csv_cells_are_plain_numbers_and_empty_for_no_answer(tmp_path: Path) -> None:
    path = tmp_path / "demo.csv"
    write_csv(samples(), path)
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0]["direct_active"] == "False" and rows[0]["direct_replicas"] == "1"
    assert rows[5]["prometheus_fill_tokens"] == ""
    assert rows[5]["prometheus_demand_per_s"] == "8.000"


def test_summary_lines_give_each_path_and_the_ratio() -> None:
    summary = summarize(
        samples(), step_start_s=10.0, step_end_s=80.0, step_per_s=120.0, target_per_pod=8.0
    )
    text = "\n".join(summary_lines(summary, prometheus=True))
    assert "direct (scaler over gRPC)     1.0 s" in text
    assert "Prometheus (rate()[1m])      51.0 s   ratio 51x" in text  # 2/s a second to 102
    direct_only = "\n".join(summary_lines(summary, prometheus=False))
    assert "Prometheus" not in direct_only


@pytest.mark.parametrize("prometheus", [True, False], ids=["both-paths", "direct-only"])
def test_the_chart_is_written_as_png(tmp_path: Path, prometheus: bool) -> None:
    summary = summarize(
        samples(), step_start_s=10.0, step_end_s=80.0, step_per_s=120.0, target_per_pod=8.0
    )
    path = tmp_path / "demo.png"
    write_chart(samples(), summary, path, title="test", prometheus=prometheus, full_tokens=60.0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""The e2e bench's rows, ratios and medians, from summaries written as a run writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from e2e.report import bench


def summary(phase: float, direct: int, prometheus: int, floor: int) -> dict[str, Any]:
    def fleet(refused: int) -> dict[str, Any]:
        return {
            "first_sync_after_step_s": 15 - phase,
            "seconds_to_right_size_ready": 16 - phase,
            "ready_after_first_sync_s": 1.0,
            "ready_after_scaled_s": 1.0,
            "refused": refused,
            "answered": 9000 - refused,
            "lost": 0,
        }

    return {"step_after_sync_s": phase} | {
        "direct": fleet(direct),
        "prometheus": fleet(prometheus),
        "floor": fleet(floor),
    }


@pytest.mark.parametrize(
    ("runs", "expected"),
    [(1, [7.5]), (3, [2.5, 7.5, 12.5]), (2, [3.75, 11.25])],
    ids=["one", "three", "two"],
)
def test_phases_cover_the_sync_period_evenly(runs: int, expected: list[float]) -> None:
    assert bench.phases(runs, 15.0) == expected


def test_rows_ratios_and_medians(tmp_path: Path) -> None:
    dirs = []
    for i, figures in enumerate(
        [(2.5, 500, 4000, 400), (7.5, 1000, 4000, 900), (12.5, 800, 2000, 0)]
    ):
        run_dir = tmp_path / f"run-{i + 1}"
        run_dir.mkdir()
        (run_dir / "summary.json").write_text(json.dumps(summary(*figures)))
        dirs.append(run_dir)
    text = bench.write(dirs, tmp_path)
    written = json.loads((tmp_path / "bench.json").read_text())
    ratios = [
        (r["prometheus_over_direct_refused"], r["direct_over_floor_refused"])
        for r in written["runs"]
    ]
    assert ratios == [(8.0, 1.25), (4.0, 1.11), (2.5, None)]  # no ratio over 0 refused
    assert written["median"]["direct"]["refused"] == 800
    assert written["median"]["prometheus_over_direct_refused"] == 4.0
    assert written["median"]["direct_over_floor_refused"] == pytest.approx(1.18)
    assert "| median | - | direct | 7.5 | 8.5 | 1 | 1 | 800 | 8200 | 0 |" in text

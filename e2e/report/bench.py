"""Several `make e2e` runs side by side (outside CI): one row per run and fleet, the
ratios each run gives, and their medians. Pure: reads summaries, writes text.

    python -m e2e --runs 3        (out/e2e/bench/: run-1/ .. run-N/, bench.json, bench.md)
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FLEETS = ("direct", "prometheus", "floor")
COLUMNS = (
    "first_sync_after_step_s",
    "seconds_to_right_size_ready",
    "ready_after_first_sync_s",
    "ready_after_scaled_s",
    "refused",
    "answered",
    "lost",
)


def phases(runs: int, period_s: float) -> list[float]:
    """Where the step lands after a sync in each run: the middles of `runs` equal
    parts of the sync period, so the runs cover the cycle evenly."""
    return [round((i + 0.5) * period_s / runs, 3) for i in range(runs)]


def ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return round(top / bottom, 2)


def run_row(summary: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"step_after_sync_s": summary.get("step_after_sync_s")}
    for fleet in FLEETS:
        figures = summary.get(fleet) or {}
        row[fleet] = {key: figures.get(key) for key in COLUMNS}
    refused = {fleet: row[fleet]["refused"] for fleet in FLEETS}
    row["prometheus_over_direct_refused"] = ratio(refused["prometheus"], refused["direct"])
    row["direct_over_floor_refused"] = ratio(refused["direct"], refused["floor"])
    return row


def median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


def medians(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for fleet in FLEETS:
        found[fleet] = {key: median([row[fleet][key] for row in rows]) for key in COLUMNS}
    for key in ("prometheus_over_direct_refused", "direct_over_floor_refused"):
        found[key] = median([row[key] for row in rows])
    return found


def markdown(rows: Sequence[Mapping[str, Any]], middle: Mapping[str, Any]) -> str:
    head = (
        "| run | step after sync (s) | fleet | first sync (s) | right size ready (s) "
        "| ready - first sync (s) | ready - scaling sync (s) | 429s | answered | lost |"
    )
    lines = [head, "|" + "---|" * 10]
    labelled = [(str(i + 1), row) for i, row in enumerate(rows)] + [("median", middle)]
    for label, row in labelled:
        for fleet in FLEETS:
            cells = [_cell(row[fleet][key]) for key in COLUMNS]
            phase = _cell(row.get("step_after_sync_s"))
            lines.append(f"| {label} | {phase} | {fleet} | " + " | ".join(cells) + " |")
    lines.append("")
    for label, row in labelled:
        lines.append(
            f"- {label}: Prometheus/direct 429s {_cell(row['prometheus_over_direct_refused'])}x, "
            f"direct/floor 429s {_cell(row['direct_over_floor_refused'])}x"
        )
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def write(run_dirs: Sequence[Path], out_dir: Path) -> str:
    """bench.json and bench.md from each run's summary.json; returns the markdown."""
    rows = []
    for run_dir in run_dirs:
        path = run_dir / "summary.json"
        rows.append(run_row(json.loads(path.read_text())) | {"run": run_dir.name})
    middle = medians(rows)
    (out_dir / "bench.json").write_text(json.dumps({"runs": rows, "median": middle}, indent=2))
    text = markdown(rows, middle)
    (out_dir / "bench.md").write_text(text)
    return text

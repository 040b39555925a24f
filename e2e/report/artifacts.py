"""The run's outputs: summary.json, a CSV per second, and a chart like the demo's."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from e2e.cluster.observe import Sample
from harness import hpa
from scaler.scaling import desired_replicas

PATHS = ("direct", "prometheus", "floor")


def right_size(step_per_s: float, target_per_pod: float) -> int:
    return desired_replicas(step_per_s, target_per_pod)


def path_summary(
    samples: Sequence[Sample],
    path: str,
    *,
    step_start_s: float,
    needed: int,
    counts: Mapping[str, int],
    timing: Mapping[str, float | None],
) -> dict[str, Any]:
    """One fleet's figures. `timing`: seconds after the step of its HPA's first sync
    (`first_sync_s`), of the sync that scaled it to `needed` (`scaled_s`) and of the
    moment its Service had `needed` ready endpoints (`ready_s`), each None when it did
    not happen."""
    states = [(s.t_s, s.paths[path]) for s in samples if path in s.paths]
    reached = [t for t, state in states if t >= step_start_s and state.spec >= needed]
    first_sync_s, ready_s = timing.get("first_sync_s"), timing.get("ready_s")
    after_sync = None if first_sync_s is None or ready_s is None else ready_s - first_sync_s
    scaled_s = timing.get("scaled_s")
    after_scaled = None if scaled_s is None or ready_s is None else ready_s - scaled_s
    return {
        "max_replicas": max((state.spec for _, state in states), default=0),
        "seconds_to_right_size": round(reached[0] - step_start_s, 1) if reached else None,
        "first_sync_after_step_s": rounded(first_sync_s),
        "seconds_to_right_size_ready": rounded(ready_s),
        "ready_after_first_sync_s": rounded(after_sync),
        "ready_after_scaled_s": rounded(after_scaled),
        "refused": counts.get("refused", 0),
        "answered": counts.get("answered", 0),
        "lost": counts.get("lost", 0),
        "errors": sum(counts.get(k, 0) for k in ("error", "timeout", "unreachable", "no-endpoint")),
    }


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def hpa_vs_emulation(
    samples: Sequence[Sample], path: str, spec: hpa.HpaSpec
) -> list[dict[str, Any]]:
    """Each change the real HPA made, beside what the documented algorithm
    (harness/hpa.py) decides from the same metric at the same moment."""
    emulation = hpa.Autoscaler.seeded(spec, now_s=0.0, replicas=spec.min_replicas)
    rows: list[dict[str, Any]] = []
    previous = None
    for sample in samples:
        state = sample.paths.get(path)
        if state is None or state.hpa_desired is None or state.hpa_metric is None:
            continue
        if previous is not None and state.hpa_desired != previous:
            total = state.hpa_metric * previous  # the HPA reports the average per pod
            decision = emulation.sync(
                sample.t_s, value=total, spec_replicas=previous, pods=previous
            )
            rows.append(
                {"t_s": sample.t_s, "from": previous, "real": state.hpa_desired}
                | {"metric_total": round(total, 1), "emulated": decision.desired}
                | {"emulated_reason": decision.reason}
            )
        previous = state.hpa_desired
    return rows


def write_csv(samples: Sequence[Sample], path: Path) -> None:
    columns = ["t_s", "phase", "rate_per_s"]
    for name in PATHS:
        columns += [f"{name}_{k}" for k in ("spec", "ready", "hpa_desired", "hpa_metric")]
        columns += [f"{name}_{k}" for k in ("answered", "refused", "lost", "errors")]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for sample in samples:
            row: list[object] = [f"{sample.t_s:.1f}", sample.phase, f"{sample.rate_per_s:g}"]
            for name in PATHS:
                state = sample.paths.get(name)
                counts = sample.counts.get(name, {})
                row += [
                    state.spec if state else "",
                    state.ready if state else "",
                    "" if state is None or state.hpa_desired is None else state.hpa_desired,
                    "" if state is None or state.hpa_metric is None else f"{state.hpa_metric:g}",
                    counts.get("answered", 0),
                    counts.get("refused", 0),
                    counts.get("lost", 0),
                    sum(
                        counts.get(k, 0) for k in ("error", "timeout", "unreachable", "no-endpoint")
                    ),
                ]
            writer.writerow(row)


def write_summary(summary: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n")


def write_chart(
    samples: Sequence[Sample], path: Path, *, title: str, step: tuple[float, float], needed: int
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [s.t_s for s in samples]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    colours = {"direct": "tab:blue", "prometheus": "tab:orange", "floor": "tab:green"}
    for name in PATHS:
        spec = [s.paths[name].spec if name in s.paths else None for s in samples]
        ready = [s.paths[name].ready if name in s.paths else None for s in samples]
        top.step(times, spec, where="post", color=colours[name], label=f"{name}: spec replicas")
        top.step(times, ready, where="post", color=colours[name], linestyle=":", label="ready")
        refused = [s.counts.get(name, {}).get("refused", 0) for s in samples]
        bottom.plot(times, refused, color=colours[name], label=f"{name}: 429 per second")
    top.axhline(needed, color="grey", linestyle="--", linewidth=0.8, label=f"right size {needed}")
    for axis in (top, bottom):
        axis.axvspan(*step, color="grey", alpha=0.1)
        axis.legend(loc="upper right", fontsize=8)
        axis.grid(alpha=0.3)
    top.set_ylabel("replicas")
    bottom.set_ylabel("429 / s")
    bottom.set_xlabel("seconds (shaded: the step)")
    top.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

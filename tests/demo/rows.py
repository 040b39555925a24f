"""Rows to build test outputs from: a step that two fleets follow (the floor sooner) and one
does not."""

from __future__ import annotations

from typing import Any

from demo.scenarios import Scenario, step
from demo.series import FleetName, FleetState, PodLife, Row, Summary, make_row, summarize
from harness.hpa import HpaSpec
from harness.scaledobject import SCALED_OBJECT_BEHAVIOR

SPEC = HpaSpec(target_per_pod=8.0, behavior=SCALED_OBJECT_BEHAVIOR)


def scenario() -> Scenario:
    return step(40, 123)  # 4 s idle, 28 s at 123/s, 8 s idle


def rows() -> list[Row]:
    plan = scenario()
    built = []
    for t_s in range(plan.duration_s):
        rate = plan.rate_at(t_s)
        ready = 16 if t_s >= 10 else 3
        direct = FleetState(
            metric=float(rate), desired=ready, running=ready, ready=ready, active=rate > 0
        )
        sized = 16 if t_s >= 8 else 3
        floor = FleetState(
            metric=float(rate), desired=sized, running=sized, ready=sized, active=rate > 0
        )
        slow = FleetState(
            metric=None if t_s < 3 else 2.0 * t_s, desired=3, running=3, ready=3, active=None
        )
        ok_direct = min(rate, 10 * ready)
        ok_floor = min(rate, 10 * sized)
        lines: dict[FleetName, dict[str, Any]] = {
            "direct": {"sent": rate, "ok": ok_direct, "r429": rate - ok_direct, "errors": 0,
                       "lost": 0, "p99_ms": 2.5 if rate else None},
            "prometheus": {"sent": rate, "ok": min(rate, 30), "r429": max(0, rate - 31),
                           "errors": 1 if rate else 0, "lost": 1 if rate else 0,
                           "p99_ms": 3.0 if rate else None},
            "floor": {"sent": rate, "ok": ok_floor, "r429": rate - ok_floor, "errors": 0,
                      "lost": 0, "p99_ms": 2.0 if rate else None},
        }  # fmt: skip
        states = {"direct": direct, "prometheus": slow, "floor": floor}
        built.append(make_row(plan, t_s, states, lines,  # type: ignore[arg-type]
                              target_per_pod=8.0, min_replicas=1, max_replicas=20))  # fmt: skip
    return built


def lives() -> dict[FleetName, list[PodLife]]:
    first = [PodLife(f"direct-{i}", 100 + i, -2.0, -1.0, None, None) for i in range(3)]
    added = [PodLife(f"direct-{i}", 100 + i, 8.0, 10.0, None, None) for i in range(3, 16)]
    slow = [PodLife(f"prometheus-{i}", 200 + i, -2.0, -1.0, None, None) for i in range(3)]
    floor = [PodLife(f"floor-{i}", 300 + i, -2.0, -1.0, None, None) for i in range(3)]
    floor += [PodLife(f"floor-{i}", 300 + i, 7.0, 8.0, None, None) for i in range(3, 16)]
    return {"direct": first + added, "prometheus": slow, "floor": floor}


def summary() -> Summary:
    return summarize(rows(), scenario(), lives(), spec=SPEC, sync_s=15.0, first_sync_s=11.5)

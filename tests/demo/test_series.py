"""The demo's arithmetic: desired replicas and the seconds until each path saw the step."""

from __future__ import annotations

from dataclasses import replace

import pytest

from demo.series import Sample, desired_replicas, summarize
from tests.demo.samples import IDLE


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [
        (0.0, 8.0, 1),  # never under the minimum
        (8.0, 8.0, 1),
        (8.001, 8.0, 2),
        (120.0, 8.0, 15),
        (120.0004, 8.0, 15),  # KEDA passes 3 decimals: 120.000
        (120.6, 8.0, 16),
        (1e6, 8.0, 20),  # never over the maximum
        (None, 8.0, None),
        (50.0, None, None),
        (50.0, 0.0, None),
    ],
    ids=["zero", "exact", "a-hair-over", "step", "rounded-like-keda", "over", "clamped", "no-value",
         "no-target", "zero-target"],
)  # fmt: skip
def test_desired_replicas(value: float | None, target: float | None, expected: int | None) -> None:
    assert desired_replicas(value, target) == expected


def sample(t_s: float, direct: float | None, prometheus: float | None) -> Sample:
    return replace(
        IDLE,
        t_s=t_s,
        phase="step",
        direct_demand_per_s=direct,
        direct_replicas=desired_replicas(direct, 8.0),
        prometheus_demand_per_s=prometheus,
        prometheus_replicas=desired_replicas(prometheus, 8.0),
    )


def test_summary_counts_from_the_step_start_and_only_within_the_step() -> None:
    samples = [
        sample(9.0, 110.0, None),  # before the step: ignored
        sample(10.0, 0.0, None),
        sample(11.0, 101.9, 5.0),  # just under 85 % of 120 (102)
        sample(12.0, 102.0, 40.0),  # direct reaches 85 %
        sample(13.0, 120.0, 90.0),  # direct asks for 15
        sample(14.0, 120.0, 102.0),  # Prometheus reaches 85 %, asks for 13
        sample(40.0, 119.0, 125.0),  # after the step: ignored
    ]
    summary = summarize(
        samples, step_start_s=10.0, step_end_s=30.0, step_per_s=120.0, target_per_pod=8.0
    )
    assert summary.right_replicas == 15
    assert summary.direct_reached_s == pytest.approx(2.0)
    assert summary.prometheus_reached_s == pytest.approx(4.0)
    assert summary.reached_ratio == pytest.approx(2.0)
    assert summary.direct_replicas_s == pytest.approx(3.0)
    assert summary.prometheus_replicas_s is None
    assert summary.replicas_ratio is None

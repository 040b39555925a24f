"""Reading the HPA controller's sync lines from kube-controller-manager's log."""

from __future__ import annotations

import calendar

import pytest

from e2e.cluster import hpa_syncs

LINE = (
    'I1203 07:05:01.250000   4242 horizontal.go:870] "Proposing desired replicas"'
    ' logger="horizontal-pod-autoscaler-controller" desiredReplicas=16'
    ' metric="s0-rating-demand" tolerances="{scaleDown:0.1 scaleUp:0.05}"'
    ' timestamp="2026-12-03 07:05:01 +0000 UTC" scaleTarget="Deployment/openclaw-rating/rating-api"'
)


def test_a_sync_line_gives_time_namespace_desired_and_tolerances() -> None:
    (sync,) = hpa_syncs.parse([LINE], year=2026)
    assert sync.wall_s == calendar.timegm((2026, 12, 3, 7, 5, 1, 0, 0, 0)) + 0.25
    assert (sync.namespace, sync.desired) == ("openclaw-rating", 16)
    assert sync.tolerances == "{scaleDown:0.1 scaleUp:0.05}"


@pytest.mark.parametrize(
    "line",
    [
        LINE.replace("Proposing desired replicas", "Decided not to scale"),
        LINE.replace("desiredReplicas=16", "desiredReplicas=x"),
        LINE.replace("Deployment/openclaw-rating/rating-api", "rating-api"),
        "garbage " + LINE,
    ],
    ids=["other-message", "no-count", "no-target", "no-header"],
)
def test_other_lines_are_skipped(line: str) -> None:
    assert hpa_syncs.parse([line], year=2026) == []


def test_first_sync_after_a_moment_in_one_namespace() -> None:
    syncs = hpa_syncs.parse(
        [LINE, LINE.replace("07:05:01", "07:05:16"), LINE.replace("openclaw-rating/", "other/")],
        year=2026,
    )
    mine = hpa_syncs.of(syncs, "openclaw-rating")
    assert len(mine) == 2
    found = hpa_syncs.first_after(mine, mine[0].wall_s + 0.1)
    assert found is not None and found.wall_s == mine[1].wall_s
    assert hpa_syncs.first_after(mine, mine[1].wall_s + 1) is None

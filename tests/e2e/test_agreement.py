"""How far apart two scaler replicas' answers are, and the summary of many instants."""

from __future__ import annotations

import pytest

from e2e.experiment.agreement import spread, summary


@pytest.mark.parametrize(
    ("values", "expected"),
    [([100.0, 98.0], 0.02), ([50.0, 50.0], 0.0), ([0.0, 0.0], None), ([10.0], None)],
    ids=["two-percent", "equal", "idle", "one-replica"],
)
def test_spread_is_relative_to_the_larger_answer(
    values: list[float], expected: float | None
) -> None:
    found = spread(values)
    assert found == (None if expected is None else pytest.approx(expected))


def test_summary_counts_instants_within_two_percent() -> None:
    found = summary([0.0, 0.01, 0.02, 0.1], failed=1)
    assert found == {
        "samples": 4,
        "failed": 1,
        "median_spread_pct": 1.5,
        "p90_spread_pct": 2.0,
        "max_spread_pct": 10.0,
        "within_2pct": 0.75,
    }
    assert summary([], failed=0) == {"samples": 0, "failed": 0}

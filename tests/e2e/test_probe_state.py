"""Probe thresholds as kubelet counts them."""

from __future__ import annotations

from e2e.pod_runner import ProbeState
from e2e.podspec import Probe


def test_flips_after_the_thresholds_and_waits_a_period_between_runs() -> None:
    probe = Probe(
        "httpGet", 80, initial_delay_s=2, period_s=5, failure_threshold=2, success_threshold=1
    )
    state = ProbeState(probe, started_s=100.0, initially=False)
    assert not state.due(101.0) and state.due(102.0)
    assert state.record(True, 102.0) and state.passing
    assert not state.due(106.0) and state.due(107.0)
    assert not state.record(False, 107.0) and state.passing  # one failure of two
    assert not state.record(True, 112.0)  # a success resets the streak
    assert not state.record(False, 117.0)
    assert state.record(False, 122.0) and not state.passing

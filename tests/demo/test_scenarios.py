"""The scenarios: the step's shape, the seeded bursts, the oracle and the HPA's phase."""

from __future__ import annotations

import itertools

import pytest

from demo.scenarios import agents, bursts, first_sync_at_phase, first_sync_s, oracle_replicas, step


def test_the_step_is_idle_then_the_step_then_idle_and_fills_the_duration() -> None:
    scenario = step(150, 123)
    shape = [(p.name, p.start_s, p.end_s, p.rate_per_s) for p in scenario.phases]
    assert shape == [("idle", 0, 15, 0), ("step", 15, 120, 123), ("down", 120, 150, 0)]
    assert len(scenario.planned()) == 150
    assert sum(scenario.planned()) == 105 * 123
    assert [p.name for p in scenario.rises()] == ["step"]
    assert scenario.rate_at(14.9) == 0 and scenario.rate_at(15) == 123


@pytest.mark.parametrize("seed", [1, 2, 3, 42])
def test_bursts_are_5_to_10_times_the_quiet_load_with_quiet_gaps(seed: int) -> None:
    scenario = bursts(150, 12, seed=seed)
    assert scenario.duration_s == 150 and len(scenario.planned()) == 150
    names = [p.name for p in scenario.phases]
    assert names == ["quiet", "burst 1", "quiet", "burst 2", "quiet", "burst 3", "quiet"]
    for phase in scenario.rises():
        assert 5 * 12 <= phase.rate_per_s <= 10 * 12
        assert phase.seconds >= 5
    assert all(p.rate_per_s == 12 for p in scenario.phases if p.name == "quiet")


def test_bursts_are_the_same_for_a_seed_and_differ_between_seeds() -> None:
    assert bursts(150, 12, seed=7) == bursts(150, 12, seed=7)
    assert bursts(150, 12, seed=7).phases != bursts(150, 12, seed=8).phases


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(0, 1), (8, 1), (8.5, 2), (123, 16), (1000, 20)],
    ids=["idle-is-the-minimum", "exact", "a-little-over", "the-step", "the-maximum"],
)
def test_the_oracle_is_ceil_of_load_over_target_within_bounds(rate: float, expected: int) -> None:
    assert oracle_replicas(rate, 8.0, 1, 20) == expected


def test_the_first_sync_comes_half_a_sync_after_the_first_rise() -> None:
    assert first_sync_s(step(150, 123), 15.0) == 7.5  # the step at 15 s meets a sync at 22.5
    assert first_sync_s(step(40, 123), 3.0) == 2.5  # the step at 4 s, syncs at 2.5, 5.5


def test_or_the_first_sync_is_drawn_from_a_seed_within_one_sync() -> None:
    scenario = step(150, 123)
    phases = [first_sync_s(scenario, 15.0, drawn_from=seed) for seed in range(20)]
    assert all(0 <= phase < 15 for phase in phases)
    assert phases[3] == first_sync_s(scenario, 15.0, drawn_from=3)
    assert len(set(phases)) == 20


@pytest.mark.parametrize(
    ("phase", "sync_s", "first", "wait"),
    [(0.1, 15.0, 13.5, 13.5), (0.5, 15.0, 7.5, 7.5), (0.9, 15.0, 1.5, 1.5), (0.0, 15.0, 0.0, 15.0),
     (0.3, 5.0, 3.5, 3.5)],
    ids=["just-after-a-sync", "half-way", "just-before-a-sync", "on-a-sync", "sync-5-s"],
)  # fmt: skip
def test_or_the_step_lands_a_given_share_of_a_sync_after_one(
    phase: float, sync_s: float, first: float, wait: float
) -> None:
    """The step at 15 s lands `phase` of a period after a sync, and waits the rest."""
    scenario = step(150, 123)
    first_at = first_sync_at_phase(scenario, sync_s, phase)
    assert first_at == pytest.approx(first)
    syncs = [first_at + k * sync_s for k in range(40)]
    before = max(t for t in syncs if t <= 15)
    after = min(t for t in syncs if t > 15)
    assert 15 - before == pytest.approx(phase * sync_s)
    assert after - 15 == pytest.approx(wait)


@pytest.mark.parametrize("phase", [-0.1, 1.0, 1.5])
def test_a_phase_outside_one_period_is_refused(phase: float) -> None:
    with pytest.raises(ValueError, match="phase"):
        first_sync_at_phase(step(150, 123), 15.0, phase)


@pytest.mark.parametrize("seed", [1, 2, 3, 42])
def test_agents_burst_six_times_every_period_with_jitter(seed: int) -> None:
    scenario = agents(12, seed=seed)
    assert scenario.period_s is not None and 120 <= scenario.period_s <= 200
    rises = scenario.rises()
    assert [p.name for p in rises] == [f"burst {n}" for n in range(1, 7)]
    for phase in rises:
        assert 6 * 12 <= phase.rate_per_s <= 10 * 12 and 20 <= phase.seconds <= 40
    for before, after in itertools.pairwise(rises):
        gap = after.start_s - before.start_s
        assert 0.95 * scenario.period_s - 1 <= gap <= 1.05 * scenario.period_s + 1
    assert all(p.rate_per_s == 12 for p in scenario.phases if p.name == "quiet")
    assert scenario.duration_s == rises[-1].end_s + round(scenario.period_s / 2)
    assert scenario.scored_from_s == rises[2].end_s  # bursts 4 to 6 are scored
    assert f"every {scenario.period_s:.0f} s" in scenario.describe()


def test_agents_are_the_same_for_a_seed_and_the_other_scenarios_are_scored_whole() -> None:
    assert agents(12, seed=7) == agents(12, seed=7) != agents(12, seed=8)
    assert step(150, 123).scored_from_s == bursts(150, 12, seed=1).scored_from_s == 0

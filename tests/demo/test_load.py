"""The scripted burst and the `hey` command lines that carry it."""

from __future__ import annotations

import pytest

from demo.load import burst, hey_argv, phase_at


def test_the_burst_is_idle_then_the_step_then_idle_and_covers_the_duration() -> None:
    phases = burst(120.0, 120.0)
    assert [(p.name, p.start_s, p.end_s, p.rate_per_s) for p in phases] == [
        ("idle", 0.0, 15.0, 0.0),
        ("step", 15.0, 90.0, 120.0),
        ("down", 90.0, 120.0, 0.0),
    ]


@pytest.mark.parametrize(
    ("t_s", "name"),
    [(0.0, "idle"), (14.99, "idle"), (15.0, "step"), (89.9, "step"), (90.0, "down"), (500, "down")],
)
def test_phase_at(t_s: float, name: str) -> None:
    assert phase_at(burst(120.0, 120.0), t_s).name == name


@pytest.mark.parametrize(
    ("rate_per_s", "workers", "per_worker"),
    [(41.0, 1, 41.0), (50.0, 1, 50.0), (120.0, 3, 40.0), (101.0, 3, 101.0 / 3), (0.5, 1, 0.5)],
    ids=["one-worker", "most-for-one", "even", "uneven", "slow"],
)
def test_hey_is_paced_and_bounded_in_time(
    rate_per_s: float, workers: int, per_worker: float
) -> None:
    argv = hey_argv("http://127.0.0.1:1/v1/rate", rate_per_s, 12.5)
    flags = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert argv[0] == "hey" and argv[-1] == "http://127.0.0.1:1/v1/rate"
    assert flags["-z"] == "12.500s"
    assert int(flags["-c"]) == workers
    assert float(flags["-q"]) == pytest.approx(per_worker)
    assert flags["-m"] == "POST" and flags["-T"] == "application/json"

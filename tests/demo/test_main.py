"""`python -m demo`'s flags: the HPA sync period and where the step lands in its cycle."""

from __future__ import annotations

import pytest

from demo.__main__ import parse_args


@pytest.mark.parametrize(
    ("argv", "sync_s"),
    [([], 15.0), (["--hpa-sync", "5"], 5.0), (["--sync", "5"], 5.0)],
    ids=["default-15", "hpa-sync-5", "the-older-name"],
)
def test_the_hpa_sync_period(argv: list[str], sync_s: float) -> None:
    assert parse_args(argv).sync_s == sync_s


def test_the_phase_puts_the_step_that_share_of_a_sync_after_one() -> None:
    settings = parse_args(["--hpa-sync", "5", "--phase", "0.9"])
    assert settings.phase == 0.9
    assert settings.first_sync(settings.build_scenario()) == pytest.approx(0.5)  # step at 15 s


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--hpa-sync", "0.5"], "--hpa-sync: 1 to 60 seconds"),
     (["--phase", "1"], "--phase: 0 to less than 1"),
     (["--phase", "0.5", "--random-phase"], "one at most"),
     (["--phase", "0.5", "--first-sync", "2"], "one at most")],
    ids=["sync-too-short", "phase-a-whole-period", "phase-and-random", "phase-and-first-sync"],
)  # fmt: skip
def test_a_bad_flag_is_named(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "fleets", "short"),
    [
        ([], ("direct", "prometheus", "floor"), ()),
        (["--scenario", "agents"], ("direct", "floor-short", "forecast"),
         ("floor-short", "forecast")),
        (["--scenario", "bursts", "--fleets", "direct,floor,forecast"],
         ("direct", "floor", "forecast"), ()),
    ],
    ids=["step", "agents", "bursts-with-a-forecast"],
)  # fmt: skip
def test_the_fleets_and_which_have_the_short_scale_down_window(
    argv: list[str], fleets: tuple[str, ...], short: tuple[str, ...]
) -> None:
    settings = parse_args(argv)
    assert settings.fleet_names() == fleets
    assert settings.short_fleets() == short
    for name in fleets:
        window = settings.behavior_for(name).scale_down.stabilization_window_s  # type: ignore[arg-type]
        assert window == (30.0 if name in short else 300.0), name


def test_the_short_window_gives_every_pod_back_within_15_s() -> None:
    down = parse_args(["--scenario", "agents"]).short_behavior().scale_down
    assert [(p.kind, p.value, p.period_s) for p in down.policies] == [("Percent", 100, 15.0)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--fleets", "direct,nope"], "--fleets"),
     (["--fleets", "floor"], "--fleets: direct or forecast"),
     (["--forecast-lead", "0"], "--forecast-lead: 1 to 600")],
    ids=["unknown-fleet", "no-scaler-fleet", "lead-zero"],
)  # fmt: skip
def test_a_bad_fleet_flag_is_named(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err

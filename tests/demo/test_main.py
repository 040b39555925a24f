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

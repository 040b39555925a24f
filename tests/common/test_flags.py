"""Flags that fall back to environment variables: one rule for both services."""

from __future__ import annotations

import argparse

import pytest

from common.flags import (
    BadValue,
    Flag,
    Given,
    Setting,
    add_flags,
    epilog,
    given,
    parse_settings,
)
from common.numbers import parse_decimal

PORT = Flag("RATING_TEST_", "admin-port", "PORT", "the admin port", "9090")
TOKEN = Flag("RATING_TEST_", "token-file", "PATH", "a token", shown_default="none: no token")
FLAGS = (PORT, TOKEN)


def parse(argv: list[str]) -> dict[str, str | None]:
    parser = argparse.ArgumentParser(prog="test", epilog=epilog(PORT))
    add_flags(parser, FLAGS)
    return vars(parser.parse_args(argv))


def test_a_flag_is_named_after_its_variable() -> None:
    assert (PORT.option, PORT.env) == ("--admin-port", "RATING_TEST_ADMIN_PORT")
    assert PORT.label == "--admin-port [RATING_TEST_ADMIN_PORT]"


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        pytest.param([], {}, Given("9090", "--admin-port"), id="default"),
        pytest.param(
            [],
            {"RATING_TEST_ADMIN_PORT": "9091"},
            Given("9091", "--admin-port (from RATING_TEST_ADMIN_PORT)"),
            id="variable",
        ),
        pytest.param(
            ["--admin-port", "9092"],
            {"RATING_TEST_ADMIN_PORT": "9091"},
            Given("9092", "--admin-port"),
            id="flag-wins",
        ),
        pytest.param(
            [],
            {"RATING_TEST_ADMIN_PORT": ""},
            Given("", "--admin-port (from RATING_TEST_ADMIN_PORT)"),
            id="empty-variable-is-given",
        ),
    ],
)
def test_the_command_line_wins_then_the_variable_then_the_default(
    argv: list[str], environ: dict[str, str], expected: Given
) -> None:
    assert given(FLAGS, parse(argv), environ)["admin-port"] == expected


def test_a_flag_without_a_default_is_absent_unless_given() -> None:
    assert "token-file" not in given(FLAGS, parse([]), {})
    found = given(FLAGS, parse([]), {"RATING_TEST_TOKEN_FILE": "/run/token"})
    assert found["token-file"].text == "/run/token"


def test_help_names_each_variable_and_one_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "[env RATING_TEST_ADMIN_PORT, default 9090]" in text
    assert "[env RATING_TEST_TOKEN_FILE, default none: no token]" in text
    assert (
        "environment variable RATING_TEST_<FLAG>, e.g. --admin-port by RATING_TEST_ADMIN_PORT"
        in (text)
    )


def test_settings_parse_by_field_with_one_more_variable_and_name_a_bad_value() -> None:
    settings = [
        Setting.of("RATING_X_", "hold_timeout_s", parse_decimal, "seconds", "SECONDS", "30"),
        Setting.of("RATING_X_", "pod_name", str, "a name", "NAME", "host"),
    ]
    assert settings[0].flag.option == "--hold-timeout" and settings[0].flag.env == (
        "RATING_X_HOLD_TIMEOUT"
    )
    parsed = parse_settings(
        settings, {"hold_timeout_s": "2.5"}, {"POD_NAME": "p-1"}, also_from={"pod_name": "POD_NAME"}
    )
    assert parsed == {"hold_timeout_s": 2.5, "pod_name": "p-1"}
    with pytest.raises(BadValue, match=r"--hold-timeout \(from RATING_X_HOLD_TIMEOUT\): 'x'"):
        parse_settings(settings, {}, {"RATING_X_HOLD_TIMEOUT": "x"})

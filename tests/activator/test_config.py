"""The activator's flags and variables: defaults, precedence, and errors that name the flag."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from activator.config import ActivatorConfig, ConfigError, build_parser, from_values, load

ARABIC_INDIC_TEN = "\u0661\u0660"  # int() would take it as 10


def test_a_flag_wins_over_its_variable_and_the_variable_over_the_default() -> None:
    config = from_values(
        {"endpoints_file": "/tmp/pods", "hold_timeout_s": "5"},
        {"RATING_ACTIVATOR_HOLD_TIMEOUT": "9", "RATING_ACTIVATOR_MAX_HELD": "7"},
    )
    assert (config.hold_timeout_s, config.max_held, config.admin_port) == (5.0, 7, 9092)


@pytest.mark.parametrize(
    ("given", "environ", "named"),
    [
        pytest.param({}, {}, "--endpoint-slices", id="no-pod-source"),
        pytest.param(
            {"endpoints_file": "f", "endpoint_slices": "ns/svc"}, {}, "--endpoint-slices", id="two"
        ),
        pytest.param({"endpoint_slices": "NS/Svc"}, {}, "--endpoint-slices", id="bad-slices"),
        pytest.param({"endpoints_file": "f", "hold_timeout_s": "0"}, {}, "--hold-timeout", id="0"),
        pytest.param(
            {"endpoints_file": "f"}, {"RATING_ACTIVATOR_MAX_HELD": ARABIC_INDIC_TEN},
            "RATING_ACTIVATOR_MAX_HELD", id="non-ascii-digits",
        ),
        pytest.param(
            {"endpoints_file": "f", "max_held": "5000"}, {}, "--max-connections", id="held>conns"
        ),
        pytest.param({"endpoints_file": "f", "port": "9092"}, {}, "--admin-port", id="same-port"),
    ],
)  # fmt: skip
def test_a_bad_setting_names_its_flag(
    given: dict[str, str], environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        from_values(given, environ)


def test_the_command_line_exits_2_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load(["--endpoints-file", "f", "--max-held", "nope"], {})
    assert exited.value.code == 2
    assert "--max-held" in capsys.readouterr().err


def test_the_defaults_are_sane() -> None:
    config = ActivatorConfig(endpoints_file="f")
    assert (config.port, config.admin_port, config.hold_timeout_s, config.max_held) == (
        8080, 9092, 30.0, 1000,
    )  # fmt: skip


def test_the_readme_flag_table_names_every_flag() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    section = readme.read_text().split("\n## Scale from zero")[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("| `--")]
    named = set(re.findall(r"^\| `(--[a-z-]+)`", "\n".join(table), flags=re.M))
    flags = {
        option
        for action in build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    assert named == flags

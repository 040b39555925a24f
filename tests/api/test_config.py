"""Configuration from flags, `RATING_API_*` variables and defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from api.config import ApiConfig, describe, load

DESIGN_FLAGS = {
    "--host": "RATING_API_HOST",
    "--port": "RATING_API_PORT",
    "--admin-port": "RATING_API_ADMIN_PORT",
    "--bucket-capacity": "RATING_API_BUCKET_CAPACITY",
    "--bucket-rate": "RATING_API_BUCKET_RATE",
    "--max-batch": "RATING_API_MAX_BATCH",
    "--pod-name": "RATING_API_POD_NAME",
}


def test_defaults_are_those_of_the_design() -> None:
    config = load([], {"POD_NAME": "rating-api-0"})
    assert (config.host, config.port, config.admin_port) == ("0.0.0.0", 8080, 9090)
    assert (config.bucket_capacity, config.bucket_rate, config.max_batch) == (100.0, 50.0, 1000)
    assert config.pod_name == "rating-api-0"


def test_pod_name_falls_back_to_the_host_name() -> None:
    import socket

    assert load([], {}).pod_name == socket.gethostname()


FLAG_CASES = [
    ("--host", "RATING_API_HOST", "127.0.0.1", "host", "127.0.0.1"),
    ("--port", "RATING_API_PORT", "8081", "port", 8081),
    ("--admin-port", "RATING_API_ADMIN_PORT", "9091", "admin_port", 9091),
    ("--bucket-capacity", "RATING_API_BUCKET_CAPACITY", "250", "bucket_capacity", 250.0),
    ("--bucket-rate", "RATING_API_BUCKET_RATE", "12.5", "bucket_rate", 12.5),
    ("--max-batch", "RATING_API_MAX_BATCH", "5", "max_batch", 5),
    ("--pod-name", "RATING_API_POD_NAME", "pod-7", "pod_name", "pod-7"),
    ("--max-body-bytes", "RATING_API_MAX_BODY_BYTES", "4096", "max_body_bytes", 4096),
    ("--log-level", "RATING_API_LOG_LEVEL", "DEBUG", "log_level", "debug"),
    ("--shutdown-delay", "RATING_API_SHUTDOWN_DELAY", "2.5", "shutdown_delay_s", 2.5),
    ("--drain-timeout", "RATING_API_DRAIN_TIMEOUT", "3", "drain_timeout_s", 3.0),
    ("--max-header-bytes", "RATING_API_MAX_HEADER_BYTES", "8192", "max_header_bytes", 8192),
    ("--keep-alive-timeout", "RATING_API_KEEP_ALIVE_TIMEOUT", "2.5", "keep_alive_timeout_s", 2.5),
    ("--request-timeout", "RATING_API_REQUEST_TIMEOUT", "4", "request_timeout_s", 4.0),
    ("--max-connections", "RATING_API_MAX_CONNECTIONS", "64", "max_connections", 64),
]


@pytest.mark.parametrize(
    ("flag", "variable", "raw", "field", "value"),
    FLAG_CASES,
    ids=[case[0].removeprefix("--") for case in FLAG_CASES],
)
def test_each_flag_reads_its_variable_and_the_flag_wins(
    flag: str, variable: str, raw: str, field: str, value: object
) -> None:
    assert getattr(load([], {variable: raw}), field) == value
    assert getattr(load([flag, raw], {variable: "garbage"}), field) == value


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--bucket-rate", "0"], {}, "--bucket-rate [RATING_API_BUCKET_RATE] must be > 0"),
        (["--bucket-rate", "nan"], {}, "--bucket-rate: 'nan' is not a valid per_s"),
        (
            ["--bucket-capacity", "0.5"],
            {},
            "--bucket-capacity [RATING_API_BUCKET_CAPACITY] must be >= 1",
        ),
        (["--max-batch", "0"], {}, "--max-batch [RATING_API_MAX_BATCH] must be >= 1"),
        (["--port", "70000"], {}, "--port [RATING_API_PORT] must be a TCP port"),
        (
            ["--port", "9000", "--admin-port", "9000"],
            {},
            "--admin-port [RATING_API_ADMIN_PORT] must differ",
        ),
        (["--log-level", "loud"], {}, "--log-level [RATING_API_LOG_LEVEL] must be one of"),
        (
            [],
            {"RATING_API_PORT": "http"},
            "--port (from RATING_API_PORT): 'http' is not a valid port",
        ),
        (["--max-batch", "ten"], {}, "--max-batch: 'ten' is not a valid n"),
        (["--pod-name", ""], {}, "--pod-name [RATING_API_POD_NAME] must be a string of 1 to"),
        (
            ["--shutdown-delay", "-1"],
            {},
            "--shutdown-delay [RATING_API_SHUTDOWN_DELAY] must be >= 0",
        ),
    ],
    ids=[
        "rate-zero",
        "rate-nan",
        "capacity-below-one",
        "batch-zero",
        "port-too-big",
        "same-ports",
        "unknown-log-level",
        "port-from-env-not-a-number",
        "batch-not-a-number",
        "empty-pod-name",
        "negative-delay",
    ],
)
def test_bad_values_exit_2_naming_the_flag(
    argv: list[str], environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        load(argv, environ)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_dataclass_validates_when_built_directly() -> None:
    with pytest.raises(ValueError, match="--bucket-rate"):
        ApiConfig(bucket_rate=-1)


def test_describe_is_one_line_with_every_setting() -> None:
    line = describe(load(["--bucket-rate", "7"], {"POD_NAME": "p"}))
    assert "\n" not in line
    assert "bucket-rate=7.0" in line
    assert "pod-name=p" in line


def test_help_of_the_console_script_documents_every_design_flag_and_variable() -> None:
    console_script = Path(sys.executable).with_name("rating-api")
    result = subprocess.run(
        [str(console_script), "--help"], capture_output=True, text=True, timeout=30, check=True
    )
    help_text = " ".join(result.stdout.split())
    for flag, variable in DESIGN_FLAGS.items():
        assert flag in help_text
        assert variable in help_text

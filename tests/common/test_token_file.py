"""The token file both services read: one set of rules, at start-up and while running."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from common.token_file import MAX_FILE_BYTES, TokenFile, TokenFileError, read_token


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def path(tmp_path: Path) -> Path:
    token_path = tmp_path / "token"
    token_path.write_text("first\n")  # a trailing newline, as `kubectl create secret` gives
    return token_path


@pytest.mark.parametrize(
    ("content", "token"),
    [
        pytest.param(b"s3cret\n", b"s3cret", id="trailing-newline"),
        pytest.param(b"  s3cret \r\n", b"s3cret", id="whitespace-around"),
        pytest.param(b"eyJh.bGc-_~+/=", b"eyJh.bGc-_~+/=", id="b64token"),
    ],
)
def test_the_token_is_the_text_without_whitespace_around(
    tmp_path: Path, content: bytes, token: bytes
) -> None:
    (tmp_path / "token").write_bytes(content)
    assert read_token(tmp_path / "token") == token
    assert TokenFile(tmp_path / "token")() == token


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(None, "cannot be read", id="missing"),
        pytest.param(b"\n", "is empty", id="empty"),
        pytest.param(b"two words", "no bearer token", id="space-inside"),
        pytest.param("s\u00e9cret".encode(), "no bearer token", id="non-ascii"),
        pytest.param(b"s3\x00cret", "no bearer token", id="control-character"),
        pytest.param(b"x" * (MAX_FILE_BYTES + 1), "larger than", id="too-large"),
    ],
)
def test_an_unusable_file_is_refused_saying_why(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    if content is not None:
        (tmp_path / "token").write_bytes(content)
    with pytest.raises(TokenFileError, match=problem):
        read_token(tmp_path / "token")


def test_token_file_keeps_the_last_token_and_rechecks_at_most_once_a_second(path: Path) -> None:
    clock = Clock()
    token = TokenFile(str(path), clock=clock)
    assert token() == b"first"
    path.write_text("second")
    os.utime(path, ns=(1, 1))  # a new mtime, as a Secret update gives
    clock.now_s = 0.5
    assert token() == b"first"  # not looked at again yet
    clock.now_s = 1.5
    assert token() == b"second"
    path.unlink()
    clock.now_s = 3.0
    assert token() == b"second"  # briefly missing during an update: keep the last


@pytest.mark.parametrize("content", [b"\n", b"two words"], ids=["empty", "invalid"])
def test_a_file_turned_unusable_keeps_the_last_token_and_warns_once(
    path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    token = TokenFile(path, clock=clock)
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="common.token_file"):
        for second in range(1, 4):
            clock.now_s = float(second)
            assert token() == b"first"
    assert len(caplog.records) == 1
    assert "keeping the last token" in caplog.records[0].getMessage()


def test_a_swap_behind_a_symlink_is_seen(tmp_path: Path) -> None:
    """Kubernetes replaces a Secret's file by pointing a symlink at a new directory."""
    for version in ("v1", "v2"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "token").write_text(f"token-{version}")
    (tmp_path / "data").symlink_to("v1")
    clock = Clock()
    token = TokenFile(tmp_path / "data" / "token", clock=clock)
    assert token() == b"token-v1"
    (tmp_path / "data-new").symlink_to("v2")
    os.replace(tmp_path / "data-new", tmp_path / "data")
    clock.now_s = 1.0
    assert token() == b"token-v2"


def test_no_token_until_one_is_read(tmp_path: Path) -> None:
    clock = Clock()
    token = TokenFile(tmp_path / "not-yet", clock=clock)
    assert token() == b""
    (tmp_path / "not-yet").write_text("late")
    clock.now_s = 1.0
    assert token() == b"late"

"""`harness.hey`: the argv given to a real `hey`, and its summary read back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness import RatingApi, start
from harness.hey import hey_argv, parse_hey


def test_the_argv_offers_workers_times_the_rate_and_sets_the_timeout() -> None:
    argv = hey_argv("http://127.0.0.1:1/v1/rate", duration_s=2.5, workers=4,
                    per_worker_per_s=7.5, body="{}", timeout_s=3)  # fmt: skip
    assert argv[:8] == ["hey", "-z", "2.5s", "-c", "4", "-q", "7.5", "-t"]
    assert argv[-3:] == ["-d", "{}", "http://127.0.0.1:1/v1/rate"]
    assert "-t" not in hey_argv("http://x", duration_s=1, workers=1, per_worker_per_s=1, body="")


@pytest.mark.skipif(shutil.which("hey") is None, reason="hey is not installed (make system-deps)")
def test_a_real_hey_against_a_real_pod_is_read_back(tmp_path: Path) -> None:
    service = RatingApi(bucket_capacity=5, bucket_rate=1, log_level="warning")
    pod = start(service, tmp_path / "pod.log")
    try:
        body = '{"items":[{"id":"a","up":1,"down":0}]}'
        argv = hey_argv(service.rate_url, duration_s=2, workers=2, per_worker_per_s=10, body=body)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    finally:
        pod.stop()
    result = parse_hey(0, done.stdout, done.returncode)
    assert result.exit_code == 0
    assert result.statuses[200] >= 5  # the bucket's capacity, then its refill
    assert result.statuses[429] > 0  # ~40 asked for, ~7 tokens to give
    assert result.answered == result.statuses[200] + result.statuses[429]

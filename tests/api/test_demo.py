"""`python -m demo` end to end: it rates, shows a 429, and leaves nothing running."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.procs import ROOT


def port_is_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return True
    return False


def test_demo_rates_a_batch_then_shows_a_429_and_stops_the_service() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "HTTP 200 OK" in out
    assert re.search(r"agent-planner\s+votes\s+49\s+0\.8571\s+0\.7333", out)
    assert "HTTP 429 Too Many Requests" in out
    assert re.search(r"^Retry-After: \d+$", out, re.MULTILINE)
    assert re.search(r'^RateLimit: "bucket";r=0;t=\d+$', out, re.MULTILINE)
    assert '"schema": "openclaw.bucket/v1"' in out
    assert "rating-api exited with 0" in out
    public_port = int(re.search(r"Starting rating-api on 127\.0\.0\.1:(\d+)", out).group(1))  # type: ignore[union-attr]
    assert port_is_closed(public_port)


def test_ctrl_c_stops_the_service_too(tmp_path: Path) -> None:
    output = tmp_path / "demo.out"
    never_429 = ["--bucket-capacity", "1e9", "--bucket-rate", "1e9", "--max-burst", "100000000"]
    with output.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "demo", *never_429],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its own process group, like a shell job that gets Ctrl-C
        )
    try:
        deadline = time.monotonic() + 30
        while "A burst of requests" not in output.read_text():
            assert demo.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.05)
        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(timeout=30) == 130
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    text = output.read_text()
    assert "interrupted: the rating-api was stopped" in text
    public_port = int(re.search(r"Starting rating-api on 127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]
    assert port_is_closed(public_port)

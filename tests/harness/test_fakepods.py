"""`python -m harness.fakepods` in a process of its own, as the benchmarks run it."""

from __future__ import annotations

import json
import signal
import sys
import urllib.request
from pathlib import Path

from api.bucket_schema import SCHEMA
from harness import spawn, wait_log_line


def test_serves_the_pods_it_prints(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "harness.fakepods", "--count", "3", "--seconds", "60"]
    child = spawn("fake-pods", argv, tmp_path / "pods.log")
    line = wait_log_line(child, r"^\d+(,\d+)*$").group()
    ports = [int(port) for port in line.split(",")]
    assert len(set(ports)) == 3
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/bucket", timeout=5) as reply:
            assert json.loads(reply.read())["schema"] == SCHEMA
    assert child.stop() == -signal.SIGTERM  # no handler: SIGTERM ends it, no SIGKILL needed

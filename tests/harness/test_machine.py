"""`harness.machine`: the line reports print about the machine."""

from __future__ import annotations

import os
import platform

from harness.machine import machine


def test_it_names_the_cores_the_cpu_and_the_python() -> None:
    line = machine()
    assert line.startswith(f"{os.cpu_count()} cores (")
    assert line.endswith(f"), Python {platform.python_version()}")
    assert "unknown CPU" not in line  # this Linux machine has /proc/cpuinfo

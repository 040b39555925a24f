"""What a report says of the machine it ran on: cores, CPU model, Python."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def machine() -> str:
    """`N cores (model), Python X.Y.Z`; the model is `unknown CPU` without /proc/cpuinfo."""
    model = "unknown CPU"
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}"

"""OpenClaw Rating API Edge: a rating service guarded by one token bucket per pod."""

from __future__ import annotations

__version__ = "0.1.0"

"""Real server processes on loopback for the tests: `harness`, with a log file per start."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import harness
from harness import ROOT, Child, RatingApi, RatingScaler, free_port, wait_http_ok

Proc = Child
__all__ = ["ROOT", "Proc", "free_port", "spawn", "start_rating_api", "start_scaler"]
__all__ += ["wait_http_ok"]


def log_path(log_dir: Path, name: str) -> Path:
    return log_dir / f"{name}-{time.monotonic_ns()}.log"


def spawn(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    ports: Mapping[str, int] | None = None,
    env: Mapping[str, str] | None = None,
) -> Proc:
    """Start `argv` with stdout and stderr into a log file under `log_dir`."""
    return harness.spawn(name, argv, log_path(log_dir, name), ports=ports, env=env)


def start_rating_api(
    log_dir: Path,
    *args: str,
    name: str = "rating-api",
    port: int | None = None,
    admin_port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Proc:
    """A real `rating-api` process on loopback, ready when this returns."""
    api = RatingApi(
        port=port or free_port(), admin_port=admin_port or free_port(), pod_name=name, extra=args
    )
    return harness.start(api, log_path(log_dir, name), env=env)


def start_scaler(log_dir: Path, *args: str, env: Mapping[str, str] | None = None) -> Proc:
    """A real `rating-scaler` process on loopback, ready (`/healthz`) when this returns."""
    return harness.start(RatingScaler(extra=args), log_path(log_dir, "rating-scaler"), env=env)

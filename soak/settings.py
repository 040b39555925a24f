"""What one run does: sizes, durations, pacing and the bounds the checks apply."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Settings:
    """Only values; `soak.runner.run` gives them effect."""

    out_dir: Path
    duration_s: float = 600.0
    warmup_s: float = 60.0
    chaos: bool = False
    seed: int = 0
    pods: int = 3
    bucket_rate: float = 50.0
    bucket_capacity: float = 100.0
    load_factor: float = 2.0
    workers_per_pod: int = 10
    scaled_objects: int = 50
    streams: int = 4
    keda_every_s: tuple[float, float] = (1.0, 2.0)
    watch_every_s: float = 0.25
    sample_every_s: float = 5.0
    truth_every_s: float = 1.0
    poll_interval_s: float = 1.0
    pod_timeout_s: float = 0.25
    chaos_start_s: float = 5.0
    fault_s: tuple[float, float] = (1.0, 6.0)
    max_rss_growth_pct: float = 10.0
    max_fd_growth: int = 5
    recovery_slack_s: float = 0.5
    rpc_timeout_s: float = 5.0
    extra_scaler_args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.pods < 1:
            raise ValueError("pods: at least 1")
        if not 0 < self.warmup_s < self.duration_s:
            raise ValueError("warmup_s: more than 0 and less than duration_s")
        if self.chaos and self.duration_s < self.chaos_min_duration_s:
            raise ValueError(f"duration_s: chaos needs at least {self.chaos_min_duration_s:g}")
        for name in ("bucket_rate", "bucket_capacity", "load_factor", "poll_interval_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: a finite number above 0")

    @property
    def offered_per_pod(self) -> float:
        """Requests per second offered to each pod: `load_factor` times its refill rate."""
        return self.load_factor * self.bucket_rate

    @property
    def offered_per_worker(self) -> float:
        return self.offered_per_pod / self.workers_per_pod

    @property
    def fresh_for_s(self) -> float:
        """How long the scaler keeps a pod's last answer: 3 poll intervals."""
        return 3 * self.poll_interval_s

    @property
    def recovery_bound_s(self) -> float:
        """Two poll intervals after a pod returns, plus slack for our own sampling."""
        return 2 * self.poll_interval_s + self.recovery_slack_s

    @property
    def settle_s(self) -> float:
        """Quiet time after the last fault, long enough to see the scaler recover."""
        return max(5.0, self.recovery_bound_s + 2 * self.poll_interval_s)

    @property
    def chaos_min_duration_s(self) -> float:
        return self.chaos_start_s + self.settle_s + self.fault_s[1] + 5

    @property
    def gap_s(self) -> tuple[float, float]:
        """Pause between faults: longer than the recovery bound, so each one can be judged."""
        low = self.recovery_bound_s
        return (low, low + 1.5)

"""A sample reading to build test series from."""

from __future__ import annotations

from demo.series import Sample

IDLE = Sample(
    t_s=0.0, phase="idle", offered_per_s=0.0, answered_per_s=0.0, denied_per_s=0.0,
    direct_demand_per_s=0.0, direct_target_per_pod=8.0, direct_active=False, direct_replicas=1,
    prometheus_demand_per_s=0.0, prometheus_fill_tokens=60.0, prometheus_replicas=1,
)  # fmt: skip

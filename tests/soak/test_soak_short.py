"""Short soak and chaos runs inside the test suite: the same code and checks as `make soak`.

Real `rating-api` and `rating-scaler` processes, real `hey` load at twice the pods'
capacity, 50 ScaledObjects asked over gRPC as KEDA asks; the chaos run kills, restarts,
freezes and slows real pods. Only the durations and the memory bound differ from the
long runs (a short run's memory has not settled yet, so the bound is generous).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from soak.runner import Outcome, run
from soak.settings import Settings

pytestmark = pytest.mark.slow


def short(out_dir: Path, duration_s: float, *, chaos: bool = False) -> Settings:
    """A short run: 10 s of warm-up, memory sampled every 2 s, up to 50 % RSS growth."""
    return Settings(
        out_dir=out_dir, duration_s=duration_s, warmup_s=10.0, sample_every_s=2.0,
        max_rss_growth_pct=50.0, chaos=chaos, seed=20261128, chaos_start_s=3.0,
        fault_s=(1.0, 3.5),
    )  # fmt: skip


def failed(outcome: Outcome) -> str:
    bad = [f"{c.name}: {c.detail}" for c in outcome.checks if not c.ok]
    return "\n".join(bad) + "\n\n" + outcome.report


def test_short_soak_keeps_memory_fds_and_answers_clean(tmp_path: Path) -> None:
    outcome = run(settings=short(tmp_path, 30.0))
    assert outcome.ok, failed(outcome)
    names = {check.name for check in outcome.checks}
    assert {"no 5xx from the pods", "scaler counted no failed RPC"} <= names
    ev = outcome.evidence
    assert len([so for so in ev.objects if so.role == "keda"]) == 50
    assert all(call.ok for call in ev.calls)
    assert (tmp_path / "report.md").read_text() == outcome.report


def test_short_chaos_run_scaler_survives_and_recovers(tmp_path: Path) -> None:
    outcome = run(settings=short(tmp_path, 40.0, chaos=True))
    assert outcome.ok, failed(outcome)
    faults = outcome.evidence.faults
    assert {fault.kind for fault in faults} == {"kill", "restart", "freeze", "slow"}, faults
    assert "recovers within two poll intervals" in {check.name for check in outcome.checks}

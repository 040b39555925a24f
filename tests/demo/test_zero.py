"""The zero scenario, shortened: real scaler, activator and pods; KEDA and the HPA emulated."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from demo.zero import ZeroSettings, run_zero

pytestmark = pytest.mark.slow


async def test_two_wake_ups_and_a_scale_to_zero_lose_nothing(tmp_path: Path) -> None:
    settings = ZeroSettings(
        idle_s=2.0, steady_s=3, burst_per_s=10, burst_s=2, cooldown_s=4.0,
        polling_s=1.0, sync_s=3.0, out_dir=tmp_path,
    )  # fmt: skip
    out = io.StringIO()
    summary = await run_zero(settings, out)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    zero = summary["zero"]
    first, burst = zero["wakeups"]
    for wakeup in (first, burst):
        assert wakeup["lost"] == wakeup["timed_out"] == 0, wakeup
        assert wakeup["held"] >= 1 and wakeup["forwarded"] == wakeup["held"], wakeup
        assert wakeup["first_answer_s"] is not None and wakeup["pod_ready_s"] is not None
    assert first["sent"] == first["answered_200"] == 1
    assert zero["through_activator_when_ready"] == 0
    leaving = zero["scale_to_zero"]
    assert leaving["sent"] >= 10 and leaving["answered_200"] == leaving["sent"], leaving
    whys = [event["why"] for event in summary["scale_events"]]
    assert whys.count("StreamIsActive true") >= 2 and any("cooldownPeriod" in w for w in whys)
    assert "through the activator while a pod was ready: 0" in out.getvalue()

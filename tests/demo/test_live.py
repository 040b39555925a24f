"""The live view: redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
from dataclasses import replace

from demo.live import LiveView
from demo.series import summarize
from tests.demo.samples import IDLE

STEP = replace(IDLE, t_s=16.0, phase="step", offered_per_s=120.0, direct_demand_per_s=118.5,
               direct_replicas=15, direct_active=True, prometheus_demand_per_s=None,
               prometheus_replicas=None)  # fmt: skip


def test_plain_output_is_one_line_per_sample_without_escape_codes() -> None:
    out = io.StringIO()
    view = LiveView(out, redraw=False, prometheus=True, duration_s=120)
    view.show(IDLE, None)
    view.show(STEP, None)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "\x1b" not in out.getvalue()
    assert "phase=step" in lines[1] and "direct=118.5/s (15 replicas)" in lines[1]
    assert "prometheus=-/s (- replicas)" in lines[1]


def test_on_a_terminal_the_block_is_redrawn_over_the_previous_one() -> None:
    out = io.StringIO()
    view = LiveView(out, redraw=True, prometheus=False, duration_s=120)
    summary = summarize(
        [STEP], step_start_s=15.0, step_end_s=90.0, step_per_s=120.0, target_per_pod=8.0
    )
    view.show(IDLE, None)
    first_block = out.getvalue()
    view.show(STEP, summary)
    redrawn = out.getvalue()[len(first_block) :]
    assert redrawn.startswith(f"\x1b[{first_block.count(chr(10))}F\x1b[J")
    assert "Prometheus" not in redrawn
    assert "85 % of the step:   direct after 1.0 s" in redrawn
    assert "15 replicas asked: direct after 1.0 s" in redrawn

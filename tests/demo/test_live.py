"""The live view: redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from demo.live import LiveView
from tests.demo.rows import rows


def test_plain_output_is_one_line_a_second_without_escape_codes() -> None:
    out = io.StringIO()
    view = LiveView(out, redraw=False, duration_s=40)
    for row in rows()[4:6]:
        view.show(row)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\x1b" not in out.getvalue()
    assert lines[0].startswith("t=  4s step offered=123 oracle=16 | direct: metric=123.0 desired=3")
    slow = "prometheus: metric=8.0 desired=3 running=3 ready=3 sent=123 200=30 429=92 errors=1"
    assert f"{slow} lost=1 p99=3.0ms refused_so_far=93 pod_s=3" in lines[0]


def test_on_a_terminal_the_block_is_redrawn_over_the_previous_one() -> None:
    out = io.StringIO()
    view = LiveView(out, redraw=True, duration_s=40)
    for row in rows()[:12]:
        view.show(row)
    before = out.getvalue()
    view.show(rows()[12])
    redrawn = out.getvalue()[len(before) :]
    assert redrawn.startswith(f"\x1b[{before.count(chr(10)) // 12}F\x1b[J")
    assert "  13 s of 40   step: 123 req/s offered, the oracle needs 16 pods" in redrawn
    lines = {line.split()[0]: line.split() for line in redrawn.splitlines() if line.split()}
    # so far: direct refused 93/s for t = 4..9 and ran 3 pods to t = 9, then 16;
    # the floor had its 16 from t = 8
    assert lines["direct"][1:] == ["123.0", "16", "16", "16", "123", "123", "0", "0", "2.5",
                                   "558", "78"]  # fmt: skip
    assert lines["floor"][-2:] == ["372", "104"]
    assert "so far, direct vs floor: refused 558 vs 372, pod-s 78 vs 104" in redrawn

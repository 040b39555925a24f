"""The figures of one run as markdown tables, then the checks."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from soak.chaos import KINDS
from soak.checks import Check, Evidence, demand_ratios, median, recovery_times, unjustified_errors
from soak.hey_load import pod_hey_argv
from soak.measure import EDGE
from soak.probe import shapes

MIB = 1024.0
METHODS = ("GetMetricSpec", "GetMetrics", "IsActive")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """A markdown table; `right` says which columns hold numbers (right-aligned)."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render(ev: Evidence, checks: list[Check], machine: str) -> str:
    parts = [
        "### Run\n\n" + _run(ev, machine),
        "### Processes\n\n" + _processes(ev),
        "### Load\n\n" + _load(ev),
        "### Scaler\n\n" + _scaler(ev),
    ]
    if ev.settings.chaos:
        parts.append("### Faults\n\n" + _faults(ev))
    parts.append("### Checks\n\n" + _checks(checks))
    return "\n\n".join(parts) + "\n"


def _run(ev: Evidence, machine: str) -> str:
    s = ev.settings
    keda = [so for so in ev.objects if so.role == "keda"]
    targets = len({(so.pods) for so in keda})
    calls = Counter(call.method for call in ev.calls)
    mode = f"chaos, seed {s.seed}" if s.chaos else "soak"
    argv = " ".join(pod_hey_argv(s, "http://127.0.0.1:PORT/v1/rate", s.duration_s))
    rows = [
        ("mode", mode),
        ("duration", f"{s.duration_s:g} s, warm-up {s.warmup_s:g} s"),
        ("machine", machine),
        (
            "rating pods",
            f"{s.pods} x rating-api, bucket capacity {s.bucket_capacity:g}, "
            f"refill {s.bucket_rate:g}/s",
        ),
        (
            "offered load",
            f"{s.pods} x {s.offered_per_pod:g} req/s = {s.pods * s.offered_per_pod:g} req/s "
            f"({s.load_factor:g} x capacity): `{argv}` per pod",
        ),
        (
            "scaler",
            f"poll interval {s.poll_interval_s:g} s, pod timeout {s.pod_timeout_s:g} s",
        ),
        (
            "ScaledObjects",
            f"{len(keda)} polled KEDA-style every {s.keda_every_s[0]:g}-{s.keda_every_s[1]:g} s "
            f"over {targets} targets, {sum(so.role == 'watch' for so in ev.objects)} watchers "
            f"every {s.watch_every_s:g} s, {len(ev.streams)} StreamIsActive",
        ),
        ("RPCs made", ", ".join(f"{m} {calls[m]}" for m in METHODS)),
    ]
    return table(("", ""), rows, (False, False))


def _processes(ev: Evidence) -> str:
    rows = [
        (
            u.name,
            f"{u.rss_start_kib / MIB:.1f}",
            f"{u.rss_end_kib / MIB:.1f}",
            "restarted" if u.restarts else f"{u.rss_growth_pct:+.1f} %",
            f"{u.rss_max_kib / MIB:.1f}",
            str(u.fds_start),
            str(u.fds_end),
            str(u.restarts),
        )
        for u in ev.usage
    ]
    fds = ("fds before faults", "fds after faults") if ev.settings.chaos else (
        "fds after warm-up", "fds at end",
    )  # fmt: skip
    header = (
        "process", "RSS after warm-up (MiB)", "RSS at end (MiB)", "growth", "RSS max (MiB)",
        *fds, "restarts after warm-up",
    )  # fmt: skip
    note = (
        f"\n\nRead from /proc every {ev.settings.sample_every_s:g} s (VmRSS, entries of fd/). "
        f"After warm-up and at end: the median of the first and of the last "
        f"{EDGE} samples of the same process; a pod restarted by chaos is not judged."
    )
    if ev.settings.chaos:
        note += (
            " Open fds follow how many pods are up (one connection fewer per pod away), so "
            f"under chaos they are compared between {EDGE} quick samples just before the "
            "first fault and just after the last one had settled."
        )
    return table(header, rows, (False, *[True] * 7)) + note


def _load(ev: Evidence) -> str:
    s = ev.settings
    rows = []
    for h in ev.hey:
        rows.append(
            (
                f"rating-api-{h.pod}",
                f"{s.offered_per_pod:g}",
                f"{ev.truth.mean_rate(h.pod):.1f}",
                str(h.answered),
                str(h.count(200, 299)),
                str(h.statuses[429]),
                str(h.server_errors),
                str(h.client_errors),
                str(ev.truth.boots(h.pod)),
            )
        )
    header = (
        "pod", "offered req/s", "counted by the pod, req/s", "answered", "2xx", "429", "5xx",
        "client-side errors", "boots",
    )  # fmt: skip
    note = (
        "\n\n`counted by the pod`: growth of its `granted_total + denied_total` per second of "
        "its own uptime, read every second while it answered; client-side errors are refused, "
        "reset or timed-out requests seen by hey."
    )
    return table(header, rows, (False, *[True] * 8)) + note


def _scaler(ev: Evidence) -> str:
    rows = []
    for method in METHODS:
        mine = Counter(c.code for c in ev.calls if c.method == method)
        theirs_ok = ev.scaler_rpc.get((method, "OK"), 0.0)
        theirs_bad = sum(n for (m, c), n in ev.scaler_rpc.items() if m == method and c != "OK")
        other = sum(n for code, n in mine.items() if code not in ("OK", "UNAVAILABLE"))
        rows.append(
            (
                method, str(mine["OK"]), str(mine["UNAVAILABLE"]), str(other),
                f"{theirs_ok:.0f}", f"{theirs_bad:.0f}",
            )
        )  # fmt: skip
    header = (
        "method", "OK", "UNAVAILABLE", "other errors", "scaler's count: OK",
        "scaler's count: not OK",
    )  # fmt: skip
    ratios = [value / truth for _, value, truth in demand_ratios(ev) if truth > 0]
    errors = ", ".join(f"{reason} {n:.0f}" for reason, n in sorted(ev.scaler_pod_errors.items()))
    stream_msgs = sum(len(log.messages) for log in ev.streams)
    facts = [
        ("errors while a named pod was surely fresh", str(len(unjustified_errors(ev)))),
        (
            "demand / true demand",
            f"median {median(ratios):.2f}, highest {max(ratios, default=math.nan):.2f}",
        ),
        ("pod polls that failed, by reason", errors or "none"),
        ("StreamIsActive messages", f"{stream_msgs} on {len(ev.streams)} streams"),
    ]
    return (
        table(header, rows, (False, *[True] * 5))
        + "\n\n"
        + table(("", ""), facts, (False, False))
        + "\n\nThe scaler's counts come from its `/metrics` (`openclaw_rating_scaler_rpc_total`)."
    )


def _faults(ev: Evidence) -> str:
    times = recovery_times(ev)
    rows = []
    for kind in KINDS:
        mine = [(f, s) for f, s in times if f.kind == kind]
        seen = [s for _, s in mine if s is not None]
        rows.append(
            (
                kind,
                str(len(mine)),
                _number(median([f.duration_s for f, _ in mine]), 1),
                _number(median(seen), 2),
                _number(max(seen, default=math.nan), 2),
                str(len(mine) - len(seen)),
            )
        )
    header = (
        "fault", "count", "median duration (s)", "recovery median (s)", "recovery worst (s)",
        "not recovered",
    )  # fmt: skip
    unavailable = sum(1 for c in ev.calls if c.code == "UNAVAILABLE")
    targets = ", ".join(
        f"{kind} {list(t)}" for kind, group in shapes(ev.settings.pods).items() for t in group
    )
    note = (
        f"\n\nRecovery: from the pod's return (`/readyz` answering after kill or restart, the "
        f"last SIGCONT after freeze or slow) to the first GetMetrics about that pod alone "
        f"that answers OK with 0 < demand <= 2 x true demand; bound "
        f"{ev.settings.recovery_bound_s:g} s. {unavailable} calls answered UNAVAILABLE, each "
        f"while no pod it names was surely fresh. Targets: {targets}."
    )
    return table(header, rows, (False, *[True] * 5)) + note


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "-"


def _checks(checks: list[Check]) -> str:
    rows = [(c.name, "pass" if c.ok else "**FAIL**", c.detail.replace("|", "/")) for c in checks]
    passed = sum(c.ok for c in checks)
    verdict = f"\n\n{passed} of {len(checks)} checks passed."
    return table(("check", "result", "detail"), rows, (False, False, False)) + verdict

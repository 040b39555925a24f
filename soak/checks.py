"""The invariants, judged after the run from what was recorded: pure functions of `Evidence`.

"Surely fresh": a pod that has been serving, unfrozen, for the scaler's freshness span
(3 poll intervals) plus some slack must have answered the scaler's recent polls, so a
target that names it has fresh data. "True demand" of a pod: what it counted itself over
the last few seconds when it was serving all that time, otherwise what `hey` offered it
(its clients kept trying while it was away).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from harness.hey import HeyResult
from soak.chaos import Fault
from soak.measure import Usage
from soak.probe import Call, ScaledObject, StreamLog
from soak.settings import Settings
from soak.truth import Truth
from soak.under_test import Timeline

SHOWN = 3  # examples quoted in a failed check's detail
DEMAND_SLACK_PER_S = 1.0  # absolute slack on "twice the true demand"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(slots=True)
class Evidence:
    """Everything one run recorded."""

    settings: Settings
    objects: list[ScaledObject]
    calls: list[Call]
    streams: list[StreamLog]
    timeline: Timeline
    faults: list[Fault]
    truth: Truth
    usage: list[Usage]
    hey: list[HeyResult]
    scaler_gone_at: float | None
    scaler_exit: int | None
    scaler_rpc: dict[tuple[str, str], float]
    scaler_pod_errors: dict[str, float]
    logs: dict[str, str]
    probe_end: float


def surely_fresh(ev: Evidence, pods: Iterable[int], start: float, end: float) -> list[int]:
    """The pods that served, unfrozen, from the freshness span before `start` to `end`."""
    since = start - ev.settings.fresh_for_s - ev.settings.recovery_slack_s
    return [pod for pod in pods if ev.timeline.up_throughout(pod, since, end)]


def true_demand(ev: Evidence, pods: Iterable[int], at: float) -> float:
    """Requests per second asked of `pods` around `at` (see the module's docstring)."""
    span = 5.0 + 2 * ev.settings.poll_interval_s  # the longest window asked for, and then some
    total = 0.0
    for pod in pods:
        rate = None
        if ev.timeline.up_throughout(pod, at - span, at):
            rate = ev.truth.received_rate(pod, at - span, at)
        total += ev.settings.offered_per_pod if rate is None else rate
    return total


def demand_ratios(ev: Evidence) -> list[tuple[Call, float, float]]:
    """(call, value, true demand) for every answered GetMetrics of a `demand` trigger."""
    out = []
    for call in ev.calls:
        so = ev.objects[call.so]
        if call.method == "GetMetrics" and call.ok and so.metric == "demand":
            value = call.keda_value
            if value is not None:
                out.append((call, value, true_demand(ev, so.pods, call.ended)))
    return out


def recovery_times(ev: Evidence) -> list[tuple[Fault, float | None]]:
    """Per fault: seconds from the pod's return to the first plausible answer about the
    pod alone (a watcher's GetMetrics started after the return); None if none came
    before the next fault on that pod or the end of the probe."""
    watchers = {ev.objects[i].pods[0]: i for i, so in enumerate(ev.objects) if so.role == "watch"}
    by_object: dict[int, list[Call]] = {}
    for call in ev.calls:
        by_object.setdefault(call.so, []).append(call)
    out: list[tuple[Fault, float | None]] = []
    for number, fault in enumerate(ev.faults):
        if fault.returned is None or fault.pod not in watchers:
            out.append((fault, None))
            continue
        later = [f.started for f in ev.faults[number + 1 :] if f.pod == fault.pod]
        horizon = min([ev.probe_end, *later])
        calls = by_object.get(watchers[fault.pod], [])
        out.append((fault, _first_plausible(ev, calls, fault.returned, horizon)))
    return out


def _first_plausible(ev: Evidence, calls: list[Call], since: float, horizon: float) -> float | None:
    for call in calls:
        if call.started < since or call.started > horizon or not call.ok:
            continue
        pods = ev.objects[call.so].pods
        value = call.keda_value
        bound = 2 * true_demand(ev, pods, call.ended) + DEMAND_SLACK_PER_S
        if value is not None and 0 < value <= bound:
            return call.ended - since
    return None


def unjustified_errors(ev: Evidence) -> list[tuple[Call, list[int]]]:
    """Failed unary calls that no pod outage explains: (call, pods that were surely fresh).
    Only UNAVAILABLE can be explained, and only when no named pod was surely fresh."""
    out = []
    for call in ev.calls:
        if call.ok:
            continue
        fresh = surely_fresh(ev, ev.objects[call.so].pods, call.started, call.ended)
        if call.code != "UNAVAILABLE" or fresh:
            out.append((call, fresh))
    return out


def check_all(ev: Evidence) -> list[Check]:
    checks = [
        _scaler_alive(ev),
        _no_5xx(ev),
        _load_ran(ev),
        _every_object_answered(ev),
        _never_negative(ev),
        _at_most_twice_demand(ev),
        _deficit_within_capacity(ev),
        _errors_only_without_fresh_pods(ev),
        _streams(ev),
        _memory(ev),
        _fds(ev),
        _logs(ev),
    ]
    if ev.settings.chaos:
        checks.insert(8, _recovery(ev))
        checks.insert(8, _no_stale_answers(ev))
    else:
        checks.insert(8, _scaler_counted_no_errors(ev))
    return checks


def _scaler_alive(ev: Evidence) -> Check:
    ok = ev.scaler_gone_at is None and ev.scaler_exit == 0
    if ev.scaler_gone_at is not None:
        detail = f"the scaler exited during the run, at {ev.scaler_gone_at:.1f} s"
    else:
        detail = f"ran throughout; SIGTERM at the end: exit {ev.scaler_exit}"
    return Check("scaler never died", ok, detail)


def _no_5xx(ev: Evidence) -> Check:
    per_pod = [f"pod {h.pod}: {h.server_errors}" for h in ev.hey]
    total = sum(h.server_errors for h in ev.hey)
    return Check("no 5xx from the pods", total == 0, f"{total} ({', '.join(per_pod)})")


def _load_ran(ev: Evidence) -> Check:
    problems = [f"hey for pod {h.pod} exited {h.exit_code}" for h in ev.hey if h.exit_code != 0]
    problems += [f"pod {h.pod} answered nothing" for h in ev.hey if h.answered == 0]
    if not ev.settings.chaos:  # healthy pods: every request gets an answer
        problems += [f"pod {h.pod}: {dict(h.errors)}" for h in ev.hey if h.client_errors]
    answered = sum(h.answered for h in ev.hey)
    return Check("load ran and was answered", not problems, "; ".join(problems) or f"{answered}")


def _every_object_answered(ev: Evidence) -> Check:
    answered = {c.so for c in ev.calls if c.ok and c.method == "GetMetrics"}
    asked = [i for i, so in enumerate(ev.objects) if so.role != "stream"]
    missing = [ev.objects[i].name for i in asked if i not in answered]
    detail = f"missing: {', '.join(missing[:SHOWN])}" if missing else f"{len(asked)} objects"
    return Check("every ScaledObject got metrics", not missing, detail)


def _never_negative(ev: Evidence) -> Check:
    bad = []
    for call in ev.calls:
        if not call.ok or call.value is None or call.method == "IsActive":
            continue
        lowest = 1 if call.method == "GetMetricSpec" else 0
        int_ok = call.value_int is None or call.value_int >= lowest
        if not (math.isfinite(call.value) and call.value >= 0 and int_ok):
            bad.append(f"{call.method} {ev.objects[call.so].name} -> {call.value}")
    counted = sum(1 for c in ev.calls if c.ok and c.method != "IsActive")
    return Check("never a negative value", not bad, _examples(bad) or f"{counted} values")


def _at_most_twice_demand(ev: Evidence) -> Check:
    ratios = demand_ratios(ev)
    bad = [
        f"{ev.objects[call.so].name} at {call.ended:.1f} s: {value:.1f} > 2 x {truth:.1f}"
        for call, value, truth in ratios
        if value > 2 * truth + DEMAND_SLACK_PER_S
    ]
    worst = max((value / truth for _, value, truth in ratios if truth > 0), default=0.0)
    detail = _examples(bad) or f"{len(ratios)} values, highest {worst:.2f} x the true demand"
    return Check("demand never above twice the true demand", not bad, detail)


def _deficit_within_capacity(ev: Evidence) -> Check:
    bad = []
    counted = 0
    for call in ev.calls:
        so = ev.objects[call.so]
        if call.method != "GetMetrics" or not call.ok or so.metric != "deficit":
            continue
        counted += 1
        most = ev.settings.bucket_capacity * len(so.pods)
        if call.value is not None and call.value > most + 1e-6:
            bad.append(f"{so.name} at {call.ended:.1f} s: {call.value:.1f} > {most:g}")
    return Check("deficit within capacity", not bad, _examples(bad) or f"{counted} values")


def _errors_only_without_fresh_pods(ev: Evidence) -> Check:
    bad = [
        f"{call.method} {ev.objects[call.so].name} at {call.started:.1f} s: {call.code} "
        f"({call.detail[:80]}) while pods {fresh} were surely fresh"
        for call, fresh in unjustified_errors(ev)
    ]
    failed = Counter(c.code for c in ev.calls if not c.ok)
    detail = _examples(bad) or f"{len(ev.calls)} calls; failed: {dict(failed) or 'none'}"
    return Check("errors only while no pod was fresh", not bad, detail)


def stale_answers(ev: Evidence) -> list[Call]:
    """Answers about pods that had all been away for longer than the scaler may keep an
    answer: these should have been UNAVAILABLE. A poll cycle judges freshness (an answer
    at most 3 intervals old) and its judgement stands until the next cycle, so the data
    behind an answer may be one more interval older."""
    s = ev.settings
    slack = s.recovery_slack_s
    out = []
    for call in ev.calls:
        if not call.ok or call.method == "GetMetricSpec":  # a spec needs no fresh data
            continue
        since = call.started - s.fresh_for_s - s.poll_interval_s - slack
        pods = ev.objects[call.so].pods
        if all(ev.timeline.away_throughout(pod, since, call.ended + slack) for pod in pods):
            out.append(call)
    return out


def _no_stale_answers(ev: Evidence) -> Check:
    bad = [
        f"{c.method} {ev.objects[c.so].name} at {c.started:.1f} s -> {c.value}"
        for c in stale_answers(ev)
    ]
    detail = _examples(bad) or "every answer came from data young enough"
    return Check("UNAVAILABLE once no pod is fresh", not bad, detail)


def _recovery(ev: Evidence) -> Check:
    bound = ev.settings.recovery_bound_s
    times = recovery_times(ev)
    bad = [
        f"{f.kind} pod {f.pod} at {f.started:.1f} s: " + ("never" if s is None else f"{s:.2f} s")
        for f, s in times
        if s is None or s > bound
    ]
    seen = [s for _, s in times if s is not None]
    worst = f"worst {max(seen):.2f} s" if seen else "no faults"
    detail = _examples(bad) or f"{len(times)} faults, {worst} (bound {bound:.2f} s)"
    return Check("recovers within two poll intervals", bool(times) and not bad, detail)


def _scaler_counted_no_errors(ev: Evidence) -> Check:
    failed = {f"{m}/{c}": n for (m, c), n in ev.scaler_rpc.items() if c != "OK" and n}
    return Check("scaler counted no failed RPC", not failed, str(failed or "none"))


def _streams(ev: Evidence) -> Check:
    bad = []
    for log in ev.streams:
        name = ev.objects[log.so].name
        if not log.messages:
            bad.append(f"{name}: no message")
        bad += [f"{name}: ended {code} at {at:.1f} s ({why[:60]})" for at, code, why in log.ends]
        values = [value for _, value in log.messages]
        if any(a == b for a, b in itertools.pairwise(values)):
            bad.append(f"{name}: sent the same state twice in a row")
    sent = sum(len(log.messages) for log in ev.streams)
    detail = _examples(bad) or f"{len(ev.streams)} streams, {sent} messages"
    return Check("streams stay open and send changes only", not bad, detail)


def _memory(ev: Evidence) -> Check:
    limit = ev.settings.max_rss_growth_pct
    judged = [u for u in ev.usage if u.restarts == 0]
    bad = [f"{u.name}: +{u.rss_growth_pct:.1f} %" for u in judged if u.rss_growth_pct > limit]
    worst = max((u.rss_growth_pct for u in judged), default=math.nan)
    detail = _examples(bad) or f"{len(judged)} processes, most {worst:+.1f} % (limit {limit:g} %)"
    return Check("resident memory flat after warm-up", bool(judged) and not bad, detail)


def _fds(ev: Evidence) -> Check:
    limit = ev.settings.max_fd_growth
    judged = [u for u in ev.usage if u.restarts == 0]
    bad = [f"{u.name}: {u.fds_start} -> {u.fds_end}" for u in judged if u.fd_growth > limit]
    worst = max((u.fd_growth for u in judged), default=0)
    detail = _examples(bad) or f"{len(judged)} processes, most {worst:+d} (limit +{limit})"
    return Check("open file descriptors flat", bool(judged) and not bad, detail)


def _logs(ev: Evidence) -> Check:
    bad = [
        f"{name}: {line.strip()[:100]}"
        for name, text in ev.logs.items()
        for line in text.splitlines()
        if "Traceback" in line or " ERROR " in line or " CRITICAL " in line
    ]
    return Check("no error logged", not bad, _examples(bad) or f"{len(ev.logs)} logs read")


def _examples(bad: list[str]) -> str:
    if not bad:
        return ""
    more = f" (and {len(bad) - SHOWN} more)" if len(bad) > SHOWN else ""
    return "; ".join(bad[:SHOWN]) + more


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan

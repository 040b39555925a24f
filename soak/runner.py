"""One soak or chaos run, start to finish: `run(settings=...)` is the programmatic API.

Time 0 is when the load starts, once the scaler and every pod are ready. Until
`duration_s` the load runs; the probe, the samplers and the chaos stop a little before,
so that the last samples are taken under load. Then `hey` ends by itself, the scaler's
own counters are read, and every process is stopped (the scaler with SIGTERM, and its
exit code kept). Nothing here runs without a bound in time.
"""

from __future__ import annotations

import asyncio
import csv
import os
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from harness.keda_client import KedaClient
from harness.machine import machine
from soak.chaos import Chaos
from soak.checks import Check, Evidence, check_all
from soak.hey_load import Load
from soak.measure import Sampler
from soak.probe import Call, Probe, plan
from soak.settings import Settings
from soak.tables import render
from soak.truth import Truth
from soak.under_test import Cluster

PROBE_START_S = 1.0  # let the load reach the pods before KEDA asks
TAIL_S = 1.0  # the probe, samplers and chaos end this long before the load
HEY_GRACE_S = 30.0  # hey ends by itself; its in-flight requests are bounded by -t
OVERALL_GRACE_S = 120.0
SETTLED_SAMPLING_S = 1.0  # what Sampler.sample_settled takes, and some
FAULT_EDGES = ("before faults", "after faults")


@dataclass(frozen=True, slots=True)
class Outcome:
    checks: list[Check]
    report: str
    evidence: Evidence

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


class RunClock:
    """Seconds since `reset`, for everything recorded in one run."""

    def __init__(self) -> None:
        self._origin = time.monotonic()

    def reset(self) -> None:
        self._origin = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self._origin


def run(*, settings: Settings) -> Outcome:
    """Run, judge and report; the report is also written to `settings.out_dir`."""
    return asyncio.run(_bounded(settings))


async def _bounded(settings: Settings) -> Outcome:
    async with asyncio.timeout(settings.duration_s + OVERALL_GRACE_S):
        return await _run(settings)


async def _run(settings: Settings) -> Outcome:
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    clock = RunClock()
    cluster = Cluster(settings, settings.out_dir / "logs", clock)
    load = Load(cluster.pods, settings, settings.out_dir / "logs")
    async with aiohttp.ClientSession() as http:
        try:
            await cluster.start()
            clock.reset()
            for pod in cluster.pods:
                cluster.timeline.mark(pod.index, "up", clock())
            load.start(settings.duration_s)
            parts = await _observe(settings, cluster, http, clock)
            hey = await asyncio.to_thread(load.finish, HEY_GRACE_S)
            rpc, pod_errors = await _scaler_counters(http, cluster)
            scaler_exit = await cluster.close()
        finally:
            load.kill()
            await cluster.close()
    probe, sampler, truth, chaos = parts
    ev = Evidence(
        settings=settings,
        objects=probe.objects,
        calls=probe.calls,
        streams=probe.streams,
        timeline=cluster.timeline,
        faults=chaos.faults if chaos else [],
        truth=truth,
        usage=sampler.usage(settings.warmup_s, FAULT_EDGES if settings.chaos else None),
        hey=hey,
        scaler_gone_at=sampler.scaler_gone_at,
        scaler_exit=scaler_exit,
        scaler_rpc=rpc,
        scaler_pod_errors=pod_errors,
        logs={child.name: child.log() for child in cluster.children},
        probe_end=settings.duration_s - TAIL_S,
    )
    checks = check_all(ev)
    report = render(ev, checks, machine_now())
    (settings.out_dir / "report.md").write_text(report)
    _write_calls(settings.out_dir / "calls.csv", probe)
    _write_samples(settings.out_dir / "samples.csv", sampler)
    return Outcome(checks, report, ev)


async def _observe(
    settings: Settings, cluster: Cluster, http: aiohttp.ClientSession, clock: RunClock
) -> tuple[Probe, Sampler, Truth, Chaos | None]:
    """Probe, samplers and chaos side by side until just before the load ends."""
    until = settings.duration_s - TAIL_S
    objects = plan(settings.scaled_objects, settings.pods, settings.streams)
    refs = [so.ref(cluster.scaler.grpc_target, cluster.admin_addresses(so.pods)) for so in objects]
    sampler, truth = Sampler(), Truth()
    chaos = Chaos(cluster, settings, clock) if settings.chaos else None
    async with KedaClient.insecure(cluster.scaler.grpc_target) as client:
        probe = Probe(client, objects, refs, settings, clock)
        jobs: list[Coroutine[Any, Any, None]] = [
            _after(PROBE_START_S, probe.run(until)),
            sampler.run(cluster.children, clock, settings.sample_every_s, until),
            truth.run(http, cluster.pods, clock, settings.truth_every_s, until),
        ]
        if chaos is not None:
            jobs.append(_chaos(chaos, sampler, cluster, clock, until))
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(job)
        if chaos is not None:
            await sampler.sample_settled(cluster.children, clock, "after faults")
    return probe, sampler, truth, chaos


async def _chaos(
    chaos: Chaos, sampler: Sampler, cluster: Cluster, clock: RunClock, until: float
) -> None:
    """Open fds before the first fault, then the faults."""
    await asyncio.sleep(max(0.0, chaos.starts_at - SETTLED_SAMPLING_S - clock()))
    await sampler.sample_settled(cluster.children, clock, "before faults")
    await chaos.run(until)


async def _after(delay_s: float, job: Coroutine[Any, Any, None]) -> None:
    await asyncio.sleep(delay_s)
    await job


async def _scaler_counters(
    http: aiohttp.ClientSession, cluster: Cluster
) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """The scaler's own RPC counts by (method, code) and failed pod polls by reason."""
    async with http.get(cluster.scaler.url("/metrics"), timeout=aiohttp.ClientTimeout(5)) as r:
        text = await r.text()
    rpc: dict[tuple[str, str], float] = {}
    pod_errors: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "openclaw_rating_scaler_rpc_total":
                rpc[(sample.labels["method"], sample.labels["code"])] = sample.value
            elif sample.name == "openclaw_rating_scaler_pod_errors_total":
                reason = sample.labels["reason"]
                pod_errors[reason] = pod_errors.get(reason, 0.0) + sample.value
    return rpc, pod_errors


def _write_calls(path: Path, probe: Probe) -> None:
    with path.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(["so", "method", "started", "ended", "code", "value", "value_int"])
        for call in probe.calls:
            writer.writerow(_row(probe, call))


def _write_samples(path: Path, sampler: Sampler) -> None:
    with path.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(["at", "process", "pid", "rss_kib", "fds"])
        for s in sampler.samples:
            writer.writerow([f"{s.at:.1f}", s.name, s.pid, s.rss_kib, s.fds])


def _row(probe: Probe, call: Call) -> list[str]:
    return [
        probe.objects[call.so].name, call.method, f"{call.started:.3f}", f"{call.ended:.3f}",
        call.code, "" if call.value is None else f"{call.value:.3f}", str(call.value_int or ""),
    ]  # fmt: skip


def machine_now() -> str:
    """The machine, and its load average as the run ends."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{machine()}, load average at the end {load}"

"""Inside the sandbox: bring the cluster up, run the demo's step against the three
rating Deployments (direct, Prometheus, floor), then the faults, the voluntary
disruptions (an eviction, a rolling restart) and the fleet at zero (`e2e.experiment.zero_fleet`,
unless --no-zero), and write the outputs. Exits non-zero when a component dies, the
loop did not happen, or a fault, disruption or zero-fleet check fails.

The step lands `--phase` seconds after an HPA sync (every HPA syncs in the same
instant, see `e2e.cluster.control_plane.start_hpa_controller`), so all fleets meet the same
point of the sync cycle, and bench runs can spread it over the cycle.

    python -m e2e.in_sandbox [--hpa-sync S] [--duration S] [--phase S] [--out DIR]
    (started by `python -m e2e`)
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from e2e.cluster import build, control_plane, helm, hpa_syncs, node, pod_images, sandbox
from e2e.cluster.observe import Sample
from e2e.cluster.up import NAMESPACES, OVERLAYS, ROOT, Cluster, bring_up, dump, endpoints_of
from e2e.experiment import disruptions, faults, readback, zero_fleet
from e2e.experiment.agreement import Agreement
from e2e.experiment.balanced_load import Load, burst
from e2e.report import artifacts
from harness import hpa, scaledobject
from harness.group import ChildDied, Group

PODS = 3
BUCKET_RATE = 10.0
STEP = 4.1  # times the pods' refill, as in `make demo`
TARGET_PER_POD = 8.0  # 0.8 x 10 tokens/s, the ScaledObject's targetUtilization


@dataclass(frozen=True)
class Settings:
    out_dir: Path
    hpa_sync_s: float
    duration_s: float
    prometheus: str
    phase_s: float
    zero: bool = True  # the fleet at zero (e2e.experiment.zero_fleet), after the faults

    @property
    def step_per_s(self) -> float:
        return STEP * PODS * BUCKET_RATE


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Drive:
    samples: list[Sample]
    loads: dict[str, Load]
    step_start_s: float
    step_wall_s: float
    ready_s: dict[str, float]  # seconds after the step each fleet had the right size ready
    scaler_agreement: dict[str, Any]


def aligned_start_s(cluster: Cluster, settings: Settings, step_start_s: float) -> float:
    """The monotonic start of the load that puts the step `phase_s` after an HPA sync
    (the latest one seen, plus whole periods), at least half a second from now."""
    last_wall_s = max(s.wall_s for s in cluster.hpa_syncs() if s.namespace in NAMESPACES.values())
    now_wall_s, now_s = time.time(), time.monotonic()
    period_s = settings.hpa_sync_s
    earliest_s = now_wall_s + step_start_s + 0.5
    periods = math.ceil((earliest_s - last_wall_s - settings.phase_s) / period_s)
    step_wall_s = last_wall_s + periods * period_s + settings.phase_s
    return now_s + (step_wall_s - now_wall_s) - step_start_s


def drive(cluster: Cluster, settings: Settings) -> Drive:
    phases = burst(settings.duration_s, settings.step_per_s)
    step = phases[1]
    needed = artifacts.right_size(settings.step_per_s, TARGET_PER_POD)
    started = aligned_start_s(cluster, settings, step.start_s)
    say(
        f"\nThe step: idle {step.start_s:g} s, then {step.rate_per_s:g} req/s per Deployment "
        f"({STEP:g}x {PODS} pods' refill) for {step.end_s - step.start_s:g} s, then idle; "
        f"it lands {settings.phase_s:g} s after an HPA sync."
    )
    time.sleep(max(0.0, started - time.monotonic()))
    step_wall_s = time.time() + step.start_s - (time.monotonic() - started)
    loads = {
        path: Load(endpoints_of(cluster, namespace), phases, started).start()
        for path, namespace in NAMESPACES.items()
    }
    cluster.offered.register("floor", loads["floor"].offered_per_s)
    agreement = scaler_agreement(cluster).start()
    ready_s: dict[str, float] = {}
    samples: list[Sample] = []
    for tick in range(int(settings.duration_s) + 1):
        while time.monotonic() < started + tick:
            watch_ready(cluster, ready_s, needed, started + step.start_s)
            time.sleep(min(0.1, max(0.0, started + tick - time.monotonic())))
        cluster.procs.check_all()
        phase = next((p for p in phases if p.start_s <= tick < p.end_s), phases[-1])
        paths = {path: cluster.observer.path_state(ns) for path, ns in NAMESPACES.items()}
        counts = {path: load.tally.second(tick - 1) for path, load in loads.items()}
        samples.append(Sample(float(tick), phase.name, phase.rate_per_s, paths, counts))
        if tick % 5 == 0:
            say("  " + progress_line(samples[-1]))
    return Drive(samples, loads, step.start_s, step_wall_s, ready_s, agreement.stop())


def scaler_agreement(cluster: Cluster) -> Agreement:
    """Both rating-scaler replicas asked what KEDA asks, as the ScaledObject does."""
    namespace = NAMESPACES["direct"]
    trigger = cluster.observer.scaled_object(namespace)["spec"]["triggers"][0]
    replicas = lambda: cluster.dns.records.endpoints(namespace, "rating-scaler", "grpc")  # noqa: E731
    return Agreement(replicas, namespace, "rating-api", trigger["metadata"])


def watch_ready(cluster: Cluster, ready_s: dict[str, float], needed: int, step_s: float) -> None:
    """The first moment after the step each Service has `needed` ready endpoints (what
    the load balances over), to a tenth of a second."""
    now_s = time.monotonic()
    if now_s < step_s:
        return
    for path, namespace in NAMESPACES.items():
        if path not in ready_s and len(endpoints_of(cluster, namespace)()) >= needed:
            ready_s[path] = now_s - step_s


def progress_line(sample: Sample) -> str:
    parts = [f"t={sample.t_s:>4.0f}s {sample.phase:<4} {sample.rate_per_s:>4.0f}/s"]
    for path, state in sample.paths.items():
        refused = sample.counts.get(path, {}).get("refused", 0)
        parts.append(
            f"{path}: {state.spec:>2} spec {state.ready:>2} ready, HPA wants "
            f"{state.hpa_desired}, 429/s {refused:>3}"
        )
    return " | ".join(parts)


def summarize(cluster: Cluster, settings: Settings, run: Drive) -> dict[str, Any]:
    needed = artifacts.right_size(settings.step_per_s, TARGET_PER_POD)
    syncs = cluster.hpa_syncs()
    summary: dict[str, Any] = {
        "versions": {
            "kubernetes": build.KUBERNETES_VERSION,
            "keda": build.KEDA_VERSION,
            "etcd": build.ETCD_VERSION,
            "helm": build.HELM_VERSION,
            "containerd": build.CONTAINERD_VERSION,
        },
        "install": install_commands(),
        "image": pod_images.image_summary(cluster.api, NAMESPACES),
        "hpa_sync_s": settings.hpa_sync_s,
        "step_after_sync_s": settings.phase_s,
        "right_size": needed,
        "feature_gates": control_plane.FEATURE_GATES,
        "scaler_agreement": run.scaler_agreement,
    }
    for path, load in run.loads.items():
        namespace = NAMESPACES[path]
        timing = sync_timing(run, syncs, namespace, needed, path)
        summary[path] = artifacts.path_summary(
            run.samples,
            path,
            step_start_s=run.step_start_s,
            needed=needed,
            counts=load.tally.totals(),
            timing=timing,
        ) | {"hpa": readback.hpa_settings(cluster, namespace, syncs)}
    return summary


def install_commands() -> dict[str, str]:
    """How each fleet was installed."""
    kubectl = "kubectl apply --server-side -k manifests/overlays/"
    return {
        path: helm.install_summary() if path == helm.FLEET else kubectl + overlay
        for path, overlay in OVERLAYS.items()
    }


def sync_timing(
    run: Drive, syncs: list[hpa_syncs.Sync], namespace: str, needed: int, path: str
) -> dict[str, float | None]:
    """Seconds after the step: the HPA's first sync, the sync that scaled the fleet to
    `needed` (the last one before the sample that saw it), the right size ready."""
    mine = hpa_syncs.of(syncs, namespace)
    first = hpa_syncs.first_after(mine, run.step_wall_s)
    seen = [
        s.t_s for s in run.samples if s.t_s >= run.step_start_s and s.paths[path].spec >= needed
    ]
    seen_wall_s = run.step_wall_s + seen[0] - run.step_start_s if seen else None
    scaled = [s for s in mine if seen_wall_s is not None and s.wall_s <= seen_wall_s]
    return {
        "first_sync_s": None if first is None else first.wall_s - run.step_wall_s,
        "scaled_s": scaled[-1].wall_s - run.step_wall_s if scaled else None,
        "ready_s": run.ready_s.get(path),
    }


def check_loop(summary: dict[str, Any]) -> list[str]:
    """Reasons the loop did not happen (empty when it did)."""
    problems = []
    for path in NAMESPACES:
        if summary[path]["answered"] == 0:
            problems.append(f"{path}: no request was answered")
        if summary[path]["max_replicas"] <= PODS:
            problems.append(f"{path}: the HPA never scaled the Deployment above {PODS}")
        if summary[path]["lost"]:
            problems.append(f"{path}: {summary[path]['lost']} requests got no answer (lost)")
    problems += pod_images.image_problems(summary["image"])
    return problems


def run(settings: Settings) -> int:
    out_dir = settings.out_dir
    shutil.rmtree(out_dir, ignore_errors=True)
    run_dir, log_dir = out_dir / "run", out_dir / "logs"
    run_dir.mkdir(parents=True)
    procs = Group(one_by_one=True)
    try:
        cluster = bring_up(procs, run_dir, log_dir, settings.hpa_sync_s, settings.prometheus, say)
        if settings.zero:
            zero_fleet.apply(cluster)
        run = drive(cluster, settings)
        summary = summarize(cluster, settings, run)
        timings = faults.run(cluster, say)
        summary |= faults.summary_keys(timings)
        summary["disruptions"] = disruptions.run(cluster, say)
        if settings.zero:
            summary["zero"] = zero_fleet.run(cluster, say)
        write_outputs(cluster, settings, run.samples, summary, run.step_start_s)
        problems = check_loop(summary) + faults.problems(timings)
        problems += disruptions.problems(summary["disruptions"])
        problems += zero_fleet.problems(summary.get("zero"))
    except ChildDied as error:
        say(f"\nFAILED: a component died: {error}")
        return 2
    except (TimeoutError, RuntimeError) as error:
        say(f"\nFAILED: {error}\n(logs in {log_dir})")
        return 1
    finally:
        say("\nStopping everything, then what kubelet leaves running in the pods...")
        procs.stop_all()
        say(f"  removed {node.sweep(node.node_dir(run_dir))} cgroup directories of the pods")
    for problem in problems:
        say(f"FAILED: {problem}")
    return 1 if problems else 0


def write_outputs(
    cluster: Cluster,
    settings: Settings,
    samples: list[Sample],
    summary: dict[str, Any],
    step_start_s: float,
) -> None:
    out = settings.out_dir
    dumps = dump(cluster, out)
    artifacts.write_summary(summary, out / "summary.json")
    artifacts.write_csv(samples, out / "replicas.csv")
    step = (step_start_s, step_start_s + settings.duration_s * 5 / 8)
    needed = artifacts.right_size(settings.step_per_s, TARGET_PER_POD)
    title = (
        f"Real HPA (sync {settings.hpa_sync_s:g} s) + KEDA {build.KEDA_VERSION}, "
        f"step to {settings.step_per_s:g} req/s: rating-scaler (direct), Prometheus trigger, "
        "offered load (floor)"
    )
    artifacts.write_chart(samples, out / "replicas.png", title=title, step=step, needed=needed)
    spec = hpa.HpaSpec(
        TARGET_PER_POD,
        min_replicas=PODS,
        max_replicas=20,
        behavior=scaledobject.SCALED_OBJECT_BEHAVIOR,
    )
    rows = {path: artifacts.hpa_vs_emulation(samples, path, spec) for path in NAMESPACES}
    (out / "hpa_vs_emulation.json").write_text(json.dumps(rows, indent=2) + "\n")
    say("\nEach change the real HPA made, beside harness/hpa.py's documented algorithm:")
    for path, changes in rows.items():
        for row in changes:
            say(f"  {path:<10} {row}")
    say("\n" + "\n".join(f"  {line}" for line in report_lines(summary)))
    say(f"\nOutputs in {out}/: summary.json, replicas.csv, replicas.png, ")
    say("  " + ", ".join(p.name for p in dumps) + ", logs/")


def report_lines(summary: dict[str, Any]) -> list[str]:
    lines = [
        f"versions {summary['versions']}, HPA sync {summary['hpa_sync_s']:g} s, "
        f"step {summary['step_after_sync_s']:g} s after a sync"
    ]
    for path in NAMESPACES:
        lines.append(f"{path:<10} {summary[path]}")
    lines.append(
        f"fallback applied {summary['fallback_applied']}, recovered {summary['recovered']}"
    )
    lines += disruptions.report_lines(summary["disruptions"])
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.in_sandbox")
    parser.add_argument("--hpa-sync", type=float, default=15.0, help="HPA sync period, s")
    parser.add_argument("--duration", type=float, default=120.0, help="the step's whole run, s")
    parser.add_argument(
        "--phase", type=float, default=None, help="the step lands this long after an HPA sync, s"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "e2e")
    parser.add_argument(
        "--zero", action=argparse.BooleanOptionalAction, default=True, help="the fleet at zero"
    )
    args = parser.parse_args(argv)
    if not sandbox.inside():
        raise SystemExit("python -m e2e.in_sandbox runs inside the sandbox: use `python -m e2e`")

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Both, explicitly: the harness is process 1 of its PID namespace and inherits
    # SIGINT ignored from the launcher (which waits for it), so Python would not
    # install its own Ctrl-C handler.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    phase_s = args.hpa_sync / 2 if args.phase is None else args.phase
    if not 0 <= phase_s < args.hpa_sync:
        raise SystemExit(f"--phase must be in [0, --hpa-sync), got {phase_s:g}")
    prometheus = str(build.binary("prometheus"))
    settings = Settings(args.out, args.hpa_sync, args.duration, prometheus, phase_s, args.zero)
    try:
        code = run(settings)
    except KeyboardInterrupt:
        say("Interrupted; everything it started is stopped.")
        code = 130
    say(f"\nmake e2e: {'passed' if code == 0 else f'FAILED (exit {code})'}")
    return code


if __name__ == "__main__":
    sys.exit(main())

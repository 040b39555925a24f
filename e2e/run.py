"""Inside the sandbox: bring the cluster up, run the demo's step against both rating
Deployments, then the faults, and write the outputs. Exits non-zero when a component
dies or the loop did not happen.

    python -m e2e.run [--hpa-sync S] [--duration S]   (started by `python -m e2e`)
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from demo import hpa
from e2e import build, faults, report, sandbox
from e2e.cluster import NAMESPACES, ROOT, Cluster, bring_up, dump, endpoints_of
from e2e.load import Load, burst
from e2e.observe import Sample
from e2e.processes import ComponentDied, Procs

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

    @property
    def step_per_s(self) -> float:
        return STEP * PODS * BUCKET_RATE


def say(text: str) -> None:
    print(text, flush=True)


def drive(cluster: Cluster, settings: Settings) -> tuple[list[Sample], dict[str, Load], float]:
    phases = burst(settings.duration_s, settings.step_per_s)
    step = phases[1]
    say(
        f"\nThe step: idle {step.start_s:g} s, then {step.rate_per_s:g} req/s per Deployment "
        f"({STEP:g}x {PODS} pods' refill) for {step.end_s - step.start_s:g} s, then idle."
    )
    started = time.monotonic()
    loads = {
        path: Load(endpoints_of(cluster, namespace), phases, started).start()
        for path, namespace in NAMESPACES.items()
    }
    samples: list[Sample] = []
    for tick in range(int(settings.duration_s) + 1):
        time.sleep(max(0.0, started + tick - time.monotonic()))
        cluster.procs.check_all()
        phase = next((p for p in phases if p.start_s <= tick < p.end_s), phases[-1])
        paths = {path: cluster.observer.path_state(ns) for path, ns in NAMESPACES.items()}
        counts = {path: load.tally.second(tick - 1) for path, load in loads.items()}
        samples.append(Sample(float(tick), phase.name, phase.rate_per_s, paths, counts))
        if tick % 5 == 0:
            say("  " + progress_line(samples[-1]))
    return samples, loads, step.start_s


def progress_line(sample: Sample) -> str:
    parts = [f"t={sample.t_s:>4.0f}s {sample.phase:<4} {sample.rate_per_s:>4.0f}/s"]
    for path, state in sample.paths.items():
        refused = sample.counts.get(path, {}).get("refused", 0)
        parts.append(
            f"{path}: {state.spec:>2} spec {state.ready:>2} ready, HPA wants "
            f"{state.hpa_desired}, 429/s {refused:>3}"
        )
    return " | ".join(parts)


def summarize(
    settings: Settings, samples: list[Sample], loads: dict[str, Load], step_start_s: float
) -> dict[str, Any]:
    needed = report.right_size(settings.step_per_s, TARGET_PER_POD)
    summary: dict[str, Any] = {
        "versions": {
            "kubernetes": build.KUBERNETES_VERSION,
            "keda": build.KEDA_VERSION,
            "etcd": build.ETCD_VERSION,
        },
        "hpa_sync_s": settings.hpa_sync_s,
    }
    for path, load in loads.items():
        summary[path] = report.path_summary(
            samples,
            path,
            step_start_s=step_start_s,
            needed=needed,
            answered=load.tally.total("answered"),
            refused=load.tally.total("refused"),
        )
    return summary


def check_loop(summary: dict[str, Any]) -> list[str]:
    """Reasons the loop did not happen (empty when it did)."""
    problems = []
    for path in NAMESPACES:
        if summary[path]["answered"] == 0:
            problems.append(f"{path}: no request was answered")
        if summary[path]["max_replicas"] <= PODS:
            problems.append(f"{path}: the HPA never scaled the Deployment above {PODS}")
    return problems


def run(settings: Settings) -> int:
    out_dir = settings.out_dir
    shutil.rmtree(out_dir, ignore_errors=True)
    run_dir, log_dir = out_dir / "run", out_dir / "logs"
    run_dir.mkdir(parents=True)
    procs = Procs()
    try:
        cluster = bring_up(procs, run_dir, log_dir, settings.hpa_sync_s, settings.prometheus, say)
        samples, loads, step_start_s = drive(cluster, settings)
        summary = summarize(settings, samples, loads, step_start_s)
        timings = faults.run(cluster, say)
        summary |= faults.summary_keys(timings)
        write_outputs(cluster, settings, samples, summary, step_start_s)
        problems = check_loop(summary) + faults.problems(timings)
    except ComponentDied as error:
        say(f"\nFAILED: a component died: {error}")
        return 2
    except (TimeoutError, RuntimeError) as error:
        say(f"\nFAILED: {error}\n(logs in {log_dir})")
        return 1
    finally:
        say("\nStopping everything (node agent stops its pods first)...")
        procs.stop_all()
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
    report.write_summary(summary, out / "summary.json")
    report.write_csv(samples, out / "replicas.csv")
    step = (step_start_s, step_start_s + settings.duration_s * 5 / 8)
    needed = report.right_size(settings.step_per_s, TARGET_PER_POD)
    title = (
        f"Real HPA (sync {settings.hpa_sync_s:g} s) + KEDA {build.KEDA_VERSION}, "
        f"step to {settings.step_per_s:g} req/s: rating-scaler (direct) vs Prometheus trigger"
    )
    report.write_chart(samples, out / "replicas.png", title=title, step=step, needed=needed)
    spec = hpa.HpaSpec(
        TARGET_PER_POD, min_replicas=PODS, max_replicas=20, behavior=hpa.SCALED_OBJECT_BEHAVIOR
    )
    rows = {path: report.hpa_vs_emulation(samples, path, spec) for path in NAMESPACES}
    (out / "hpa_vs_emulation.json").write_text(json.dumps(rows, indent=2) + "\n")
    say("\nEach change the real HPA made, beside demo/hpa.py's documented algorithm:")
    for path, changes in rows.items():
        for row in changes:
            say(f"  {path:<10} {row}")
    say("\n" + "\n".join(f"  {line}" for line in report_lines(summary)))
    say(f"\nOutputs in {out}/: summary.json, replicas.csv, replicas.png, ")
    say("  " + ", ".join(p.name for p in dumps) + ", logs/")


def report_lines(summary: dict[str, Any]) -> list[str]:
    lines = [f"versions {summary['versions']}, HPA sync {summary['hpa_sync_s']:g} s"]
    for path in NAMESPACES:
        lines.append(f"{path:<10} {summary[path]}")
    lines.append(
        f"fallback applied {summary['fallback_applied']}, recovered {summary['recovered']}"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.run")
    parser.add_argument("--hpa-sync", type=float, default=15.0, help="HPA sync period, s")
    parser.add_argument("--duration", type=float, default=120.0, help="the step's whole run, s")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "e2e")
    args = parser.parse_args(argv)
    if not sandbox.inside():
        raise SystemExit("python -m e2e.run runs inside the sandbox: use `python -m e2e`")

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Both, explicitly: the harness is process 1 of its PID namespace and inherits
    # SIGINT ignored from the launcher (which waits for it), so Python would not
    # install its own Ctrl-C handler.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    settings = Settings(args.out, args.hpa_sync, args.duration, str(build.binary("prometheus")))
    try:
        code = run(settings)
    except KeyboardInterrupt:
        say("Interrupted; everything it started is stopped.")
        code = 130
    say(f"\nmake e2e: {'passed' if code == 0 else f'FAILED (exit {code})'}")
    return code


if __name__ == "__main__":
    sys.exit(main())

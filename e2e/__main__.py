"""`make e2e`: build what is missing (cached outside the checkout), then run the loop on
a real control plane inside private namespaces (see `e2e.cluster.sandbox`).

    python -m e2e [--hpa-sync S] [--duration S] [--phase S] [--no-zero] [--build-only]
    python -m e2e --runs N     the bench: N runs, the step spread over the sync cycle,
                               per-run rows and medians in out/e2e/bench/ (not for CI)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from e2e.cluster import build, image, sandbox
from e2e.report import bench

ROOT = Path(__file__).resolve().parent.parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e", description=__doc__)
    parser.add_argument(
        "--hpa-sync",
        type=float,
        default=15.0,
        help="kube-controller-manager's --horizontal-pod-autoscaler-sync-period, s "
        "(default 15, as in a cluster; another value is reported in the summary)",
    )
    parser.add_argument("--duration", type=float, default=120.0, help="the step's run, s")
    parser.add_argument(
        "--phase",
        type=float,
        default=None,
        help="the step lands this long after an HPA sync, s (default: half the sync period; "
        "with --runs, spread over the period)",
    )
    parser.add_argument("--runs", type=int, default=1, help="bench: this many runs, then medians")
    parser.add_argument("--build-only", action="store_true", help="build, then stop")
    parser.add_argument(
        "--zero",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the faults, the fleet at zero behind rating-activator "
        "(e2e.experiment.zero_fleet; on by default, --no-zero to skip)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    started = time.monotonic()
    build.main([])
    print(f"Binaries ready in {time.monotonic() - started:.1f} s.\n", flush=True)
    if args.build_only:
        return 0
    if not ensure_image():
        return 1
    if args.hpa_sync != 15.0:
        print(f"NOTE: HPA sync period {args.hpa_sync:g} s instead of a cluster's 15 s.")
    common = [f"--hpa-sync={args.hpa_sync:g}", f"--duration={args.duration:g}"]
    common.append("--zero" if args.zero else "--no-zero")
    if args.runs == 1:
        phase = [] if args.phase is None else [f"--phase={args.phase:g}"]
        sandbox.exec_inside(sandbox.python_argv("e2e.in_sandbox", [*common, *phase]))
    return run_bench(args.runs, args.hpa_sync, args.phase, common)


def ensure_image() -> bool:
    """The image the rating pods run from, built here when missing (it needs the
    network, which the sandbox has not); the run is told its key."""
    started = time.monotonic()
    try:
        record = image.ensure()
    except image.BuildError as error:
        print(f"FAILED: the image: {error}", flush=True)
        return False
    os.environ[image.KEY_ENV] = record["key"]
    print(
        f"Image {record['image']} ({record['digest']}) ready in "
        f"{time.monotonic() - started:.1f} s.\n",
        flush=True,
    )
    return True


def run_bench(runs: int, hpa_sync_s: float, phase_s: float | None, common: list[str]) -> int:
    out_dir = ROOT / "out" / "e2e" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    phases = bench.phases(runs, hpa_sync_s) if phase_s is None else [phase_s] * runs
    passed: list[Path] = []
    for number, phase in enumerate(phases, start=1):
        run_dir = out_dir / f"run-{number}"
        print(f"\n=== bench run {number} of {runs}: the step {phase:g} s after a sync ===")
        argv = [*common, f"--phase={phase:g}", f"--out={run_dir}"]
        code = sandbox.run_inside(sandbox.python_argv("e2e.in_sandbox", argv))
        if code == 130:
            return code
        if (run_dir / "summary.json").exists():
            passed.append(run_dir)
        if code != 0:
            print(f"bench run {number} FAILED (exit {code}); its figures are kept if written")
    if not passed:
        return 1
    print(f"\nBench ({len(passed)} of {runs} runs), also in {out_dir}/bench.md:\n")
    print(bench.write(passed, out_dir))
    return 0 if len(passed) == runs else 1


if __name__ == "__main__":
    sys.exit(main())

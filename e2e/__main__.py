"""`make e2e`: build what is missing (cached outside the checkout), then run the loop on
a real control plane inside private namespaces (see `e2e.sandbox`).

    python -m e2e [--hpa-sync S] [--duration S] [--build-only]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from e2e import build, sandbox


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
    parser.add_argument("--build-only", action="store_true", help="build, then stop")
    args = parser.parse_args(argv)
    started = time.monotonic()
    build.main([])
    print(f"Binaries ready in {time.monotonic() - started:.1f} s.\n", flush=True)
    if args.build_only:
        return 0
    if args.hpa_sync != 15.0:
        print(f"NOTE: HPA sync period {args.hpa_sync:g} s instead of a cluster's 15 s.")
    inner = sandbox.python_argv(
        "e2e.run", [f"--hpa-sync={args.hpa_sync:g}", f"--duration={args.duration:g}"]
    )
    sandbox.exec_inside(inner)


if __name__ == "__main__":
    sys.exit(main())

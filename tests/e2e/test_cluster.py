"""The node agent against a real kube-apiserver and kube-controller-manager: a pod
becomes Ready on its own address, an EndpointSlice lists it, the DNS stand-in names it,
and deleting its Deployment stops it and removes the pod object.

Needs the binaries `make e2e` builds and root (namespaces); skipped otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from e2e import build, sandbox

NEEDED = ("etcd", "kube-apiserver", "kube-controller-manager")
ROOT = Path(__file__).resolve().parents[2]


def skip_reason() -> str | None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare (network, mount and PID namespaces)"
    absent = [name for name in NEEDED if not build.binary(name).exists()]
    if absent:
        return f"no {', '.join(absent)} in {build.bin_dir()}: `make e2e` builds them"
    return None


@pytest.mark.slow
@pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
def test_a_pod_runs_becomes_an_endpoint_and_stops(tmp_path: Path) -> None:
    command = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child"]
    command += [sys.executable, "-m", "tests.e2e.cluster_check", str(tmp_path)]
    env = os.environ | {sandbox.INSIDE_ENV: "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["pod_ip"].startswith("10.244.")
    assert seen["ready"] == ["True"]
    assert seen["endpoints"] == [[seen["pod_ip"], 8080]]
    assert seen["dns"] == [seen["pod_ip"]]
    assert "gone_s" in seen  # the pod object went away after its process stopped

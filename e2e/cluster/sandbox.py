"""The run's private namespaces: network, mount and PID, made with `unshare` (root).

- Network: a namespace of its own has one device, `lo`, and no route anywhere else.
  The control plane binds 127.0.0.1; pod addresses (10.244/16, see `e2e.cluster.cni`)
  are added to that same `lo`, so every packet of the run stays on loopback.
- PID: the harness is process 1 there; when it exits, however it exits, the kernel
  ends every process left in the namespace. Nothing outlives the run.
- Mount: /etc/resolv.conf is replaced, in this namespace only, by one that names the
  harness's cluster DNS stand-in (`e2e.cluster.cluster_dns`), as kubelet does for a pod.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

INSIDE_ENV = "OPENCLAW_E2E_SANDBOX"
RESOLV_CONF = Path("/etc/resolv.conf")


def inside() -> bool:
    return os.environ.get(INSIDE_ENV) == "1" and os.getpid() == 1


def _unshare(argv: Sequence[str]) -> list[str]:
    if os.geteuid() != 0:
        raise SystemExit("make e2e needs root: it makes network, mount and PID namespaces")
    command = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child"]
    return [*command, *argv]


def run_inside(argv: Sequence[str]) -> int:
    """As `exec_inside`, but as a child (one run of several); its exit code. Ctrl-C
    reaches the run itself (same process group), which stops; SIGTERM here is passed
    to `unshare`, whose death ends the run (`--kill-child`)."""
    sys.stdout.flush()
    child = subprocess.Popen(_unshare(argv), env=os.environ | {INSIDE_ENV: "1"})

    def forward(signum: int, frame: FrameType | None) -> None:
        child.terminate()

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
    }
    try:
        return child.wait()
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


def exec_inside(argv: Sequence[str]) -> NoReturn:
    """Become `unshare`, running `argv` in fresh network, mount and PID namespaces.

    `--kill-child`: if `unshare` dies, the kernel kills `argv` (process 1 there) and
    with it everything in its namespace. Ctrl-C reaches `argv` (same terminal process
    group), which stops its own children; `unshare` ignores it and waits."""
    command = _unshare(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    sys.stdout.flush()
    os.execvpe(command[0], command, os.environ | {INSIDE_ENV: "1"})


def set_up(resolv_conf: Path, nameserver: str) -> None:
    """Inside: bring `lo` up, check it is the only device, point DNS at `nameserver`."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    listed = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
    devices = sorted(line.split(":")[1].strip() for line in listed.stdout.splitlines())
    if devices != ["lo"]:
        raise SystemExit(f"not in a private network namespace (devices: {devices})")
    resolv_conf.write_text(
        f"nameserver {nameserver}\nsearch svc.cluster.local cluster.local\n"
        "options ndots:5 timeout:1 attempts:2\n"
    )
    subprocess.run(["mount", "--bind", str(resolv_conf), str(RESOLV_CONF)], check=True)


def python_argv(module: str, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", module, *args]

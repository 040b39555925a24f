"""One pod on the node: its container as a local process on the pod's own address, its
probes, its status in the API, and its graceful stop.

Like kubelet: the readiness probe decides the Ready condition; a failing liveness probe
or an exit restarts the container (10 s back-off, doubling to 5 min); deletion runs the
preStop sleep, sends SIGTERM, waits out the grace period, sends SIGKILL, then removes
the pod object with grace 0. Not like kubelet: no image, no cgroups (resources are not
enforced), no user switch (the venv's interpreter lives where uid 10001 cannot read).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e import probes, volumes
from e2e.podspec import Container
from e2e.probe_timing import ContainerProbes

RESTART_BACKOFF_S = (10.0, 20.0, 40.0, 80.0, 160.0, 300.0)
TICK_S = 0.25


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodRunner(threading.Thread):
    def __init__(
        self,
        pod: Mapping[str, Any],
        container: Container,
        pod_ip: str,
        node_ip: str,
        core: client.CoreV1Api,
        log_dir: Path,
        path_env: str,
        on_gone: Callable[[str], None],
        mounts: Sequence[volumes.Mount] = (),
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['name']}", daemon=True)
        self.namespace, self.pod_name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.container, self.pod_ip, self.node_ip = container, pod_ip, node_ip
        self.core, self.path_env, self.on_gone = core, path_env, on_gone
        self.mounts, self.base_env = list(mounts), dict(base_env or {})
        self.log_path = log_dir / f"{self.namespace}_{self.pod_name}.log"
        self.grace_s = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
        self.deleting = threading.Event()
        self.stop_now = threading.Event()
        self.popen: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.started_at = now_rfc3339()

    # --- the process

    def spawn(self) -> None:
        argv = list(self.container.argv)
        found = shutil.which(argv[0], path=self.path_env)
        if found is None:
            raise FileNotFoundError(f"{argv[0]!r} not on PATH {self.path_env}")
        env = {"PATH": self.path_env, "HOSTNAME": self.pod_name, "HOME": "/tmp", "LANG": "C.UTF-8"}
        env |= self.base_env
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                volumes.wrap([found, *argv[1:]], self.mounts),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env | dict(self.container.env),
                cwd="/",
                start_new_session=True,
            )

    def signal_group(self, signum: int) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def stop_process(self, grace_s: float) -> None:
        if self.popen is None or self.popen.poll() is not None:
            self.signal_group(signal.SIGKILL)
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.popen.wait(max(0.0, grace_s))
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.popen.wait()
        self.signal_group(signal.SIGKILL)

    # --- status

    def patch_status(self, *, ready: bool, phase: str = "Running", running: bool = True) -> None:
        state: dict[str, Any] = (
            {"running": {"startedAt": self.started_at}}
            if running
            else {"terminated": {"exitCode": self.exit_code(), "reason": "Completed"}}
        )
        flag = "True" if ready else "False"
        conditions = [
            {"type": "PodReadyToStartContainers", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": flag},
            {"type": "Ready", "status": flag},
            {"type": "PodScheduled", "status": "True"},
        ]
        for condition in conditions:
            condition["lastTransitionTime"] = now_rfc3339()
        status = {
            "phase": phase,
            "hostIP": self.node_ip,
            "hostIPs": [{"ip": self.node_ip}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.started_at,
            "conditions": conditions,
            "containerStatuses": [
                {
                    "name": self.container.name,
                    "ready": ready,
                    "started": running,
                    "restartCount": self.restarts,
                    "image": "local-process",
                    "imageID": "",
                    "containerID": f"e2e://{self.popen.pid if self.popen else 0}",
                    "state": state,
                }
            ],
        }
        try:
            self.core.patch_namespaced_pod_status(self.pod_name, self.namespace, {"status": status})
        except client.ApiException as error:
            if error.status != 404:
                raise

    def exit_code(self) -> int:
        code = self.popen.poll() if self.popen else None
        return 0 if code is None else (128 - code if code < 0 else code)

    # --- the loop

    def run(self) -> None:
        try:
            self.spawn()
            self.patch_status(ready=False)
            self.supervise()
        except Exception as error:  # the pod fails; the agent keeps going
            self.log_path.open("a").write(f"\n[node-agent] pod failed: {error!r}\n")
        finally:
            self.terminate()

    def supervise(self) -> None:
        checks = self._probes()
        ready = checks.ready
        if ready:
            self.patch_status(ready=True)
        while not (self.deleting.is_set() or self.stop_now.is_set()):
            if self.popen is not None and self.popen.poll() is not None:
                ready = self.restart(ready)
                checks = self._probes()
                continue
            while due := checks.due(time.monotonic()):
                ok = probes.run(self.pod_ip, due[0].probe)
                if checks.record(due[0], ok, time.monotonic()).restart:
                    self.stop_process(self.grace_s)  # kubelet kills and restarts it
                    break
            if checks.ready != ready:
                ready = checks.ready
                self.patch_status(ready=ready)
            time.sleep(checks.sleep_s(time.monotonic(), TICK_S))

    def _probes(self) -> ContainerProbes:
        """The probes of the container started just now (see `e2e.probe_timing`)."""
        container = self.container
        return ContainerProbes(
            startup=container.startup,
            readiness=container.readiness,
            liveness=container.liveness,
            started_s=time.monotonic(),
        )

    def restart(self, was_ready: bool) -> bool:
        if was_ready:
            self.patch_status(ready=False)
        backoff_s = RESTART_BACKOFF_S[min(self.restarts, len(RESTART_BACKOFF_S) - 1)]
        if self.deleting.wait(backoff_s) or self.stop_now.is_set():
            return False
        self.restarts += 1
        self.spawn()
        self.patch_status(ready=False)
        return False

    def terminate(self) -> None:
        """Graceful stop: preStop, SIGTERM, the rest of the grace, SIGKILL; then the pod
        object goes (grace 0) when the stop came from a deletion."""
        if self.deleting.is_set() and not self.stop_now.is_set():
            self.patch_status(ready=False)
            started = time.monotonic()
            self.stop_now.wait(min(self.container.pre_stop_sleep_s, self.grace_s))
            self.stop_process(self.grace_s - (time.monotonic() - started))
            self._remove()
        else:
            self.stop_process(2.0 if self.stop_now.is_set() else self.grace_s)
        self.on_gone(self.uid)

    def _remove(self) -> None:
        options = client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=self.uid)
        )
        try:
            self.core.delete_namespaced_pod(self.pod_name, self.namespace, body=options)
        except client.ApiException as error:
            if error.status not in (404, 409):
                raise

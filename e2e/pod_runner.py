"""One pod on the node: its container (through runc from the project's image, or a
process of the venv, see `e2e.containers`) on the pod's own address, its probes, its
status in the API, and its graceful stop.

Like kubelet: the readiness probe decides the Ready condition; a failing liveness probe
or an exit restarts the container (10 s back-off, doubling to 5 min); deletion runs the
preStop sleep, sends SIGTERM, waits out the grace period, sends SIGKILL, then removes
the container and the pod object (grace 0).
"""

from __future__ import annotations

import datetime
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e import probes
from e2e.containers import Process
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
        log_path: Path,
        make_process: Callable[[], Process],
        on_gone: Callable[[str], None],
    ) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['name']}", daemon=True)
        self.namespace, self.pod_name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.container, self.pod_ip, self.node_ip = container, pod_ip, node_ip
        self.core, self.make_process, self.on_gone = core, make_process, on_gone
        self.log_path = log_path
        self.grace_s = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
        self.deleting = threading.Event()
        self.stop_now = threading.Event()
        self.process: Process | None = None
        self.restarts = 0
        self.started_at = now_rfc3339()

    # --- the container

    def spawn(self) -> None:
        self.process = self.make_process()
        self.process.start()

    def stop_process(self, grace_s: float) -> None:
        """SIGTERM, up to `grace_s` for it to exit, then SIGKILL (the whole container)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.signal(signal.SIGTERM)
            if process.wait(grace_s) is None:
                process.signal(signal.SIGKILL)
                process.wait(10.0)
        process.signal(signal.SIGKILL)  # anything it left in its group

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
                    "image": self.process.image if self.process else "",
                    "imageID": self.process.image_id if self.process else "",
                    "containerID": self.process.container_id if self.process else "",
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
        code = self.process.poll() if self.process else None
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
            if self.process is not None and self.process.poll() is not None:
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
        if self.process is not None:
            self.process.remove()
        self.spawn()
        self.patch_status(ready=False)
        return False

    def terminate(self) -> None:
        """Graceful stop: preStop, SIGTERM, the rest of the grace, SIGKILL; the container
        removed; then the pod object goes (grace 0) when the stop came from a deletion."""
        try:
            if self.deleting.is_set() and not self.stop_now.is_set():
                self.patch_status(ready=False)
                started = time.monotonic()
                self.stop_now.wait(min(self.container.pre_stop_sleep_s, self.grace_s))
                self.stop_process(self.grace_s - (time.monotonic() - started))
                self._remove_container()
                self._remove()
            else:
                self.stop_process(2.0 if self.stop_now.is_set() else self.grace_s)
        finally:
            self._remove_container()
            self.on_gone(self.uid)

    def _remove_container(self) -> None:
        if self.process is not None:
            self.process.remove()

    def _remove(self) -> None:
        options = client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=self.uid)
        )
        try:
            self.core.delete_namespaced_pod(self.pod_name, self.namespace, body=options)
        except client.ApiException as error:
            if error.status not in (404, 409):
                raise

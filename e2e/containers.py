"""A pod's container as the node agent runs it: from the project's image through runc
(`RuncContainer`), or, for an image that is not the project's, as a process of the
venv (`LocalProcess`). Both start, report an exit code, take signals and go away the
same way, so `e2e.pod_runner` drives either.

A pod runs from the image when its container's image names the project's repository
(`openclaw/rating-edge`, any tag or registry host): the node agent then runs the image
built for these sources (`python -m e2e.image`), as a node with `imagePullPolicy: Never`
runs what was loaded on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from e2e import image, oci, podspec, volumes

REPOSITORY = "openclaw/rating-edge"
REGISTRY_HOSTS = ("docker.io/", "localhost/", "ghcr.io/")
CGROUP_PARENT = "openclaw-e2e"
# Container ids name the pod (runc takes [\w+-.]); one prefix, so leftovers are found.
ID_PREFIX = "pod."


class Process(Protocol):
    """What a pod runner needs of its container."""

    container_id: str
    image: str
    image_id: str

    def start(self) -> None: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout_s: float) -> int | None: ...
    def signal(self, signum: int) -> None: ...
    def remove(self) -> None: ...


def runs_project_image(name: str) -> bool:
    """Whether an image reference names the project's repository."""
    for host in REGISTRY_HOSTS:
        name = name.removeprefix(host)
    repository = name.split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[: -(len(last) - last.index(":"))]
    return repository == REPOSITORY


@dataclass(frozen=True)
class PodImage:
    """The image built for these sources, as the node agent runs it."""

    reference: str
    digest: str
    config: oci.ImageConfig
    rootfs: Path

    @classmethod
    def load(cls, key: str) -> PodImage:
        record = image.read_record(key)
        if record is None:
            raise FileNotFoundError(f"no image built for key {key}: run python -m e2e.image")
        config = oci.read_image_config(Path(record["layout"]), record["layout_tag"])
        return cls(str(record["image"]), str(record["digest"]), config, Path(record["rootfs"]))


def container_name(namespace: str, pod: str) -> str:
    return f"{ID_PREFIX}{namespace}.{pod}"


class _Foreground:
    """A container whose process (or `runc run`) is a child of this one: its exit
    status is the container's."""

    popen: subprocess.Popen[bytes] | None = None

    def poll(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def wait(self, timeout_s: float) -> int | None:
        if self.popen is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.popen.wait(max(0.0, timeout_s))
        return None


class LocalProcess(_Foreground):
    """The container's command from the venv, in a session of its own (its group takes
    the signals), in a mount namespace with the pod's volumes when it has any."""

    image = "local-process"
    image_id = ""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        mounts: Sequence[volumes.Mount],
        path_env: str,
        log_path: Path,
    ) -> None:
        found = shutil.which(argv[0], path=path_env)
        if found is None:
            raise FileNotFoundError(f"{argv[0]!r} not on PATH {path_env}")
        self.argv = volumes.wrap([found, *argv[1:]], mounts)
        self.env, self.log_path = dict(env), log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self.container_id = "e2e://0"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd="/",
                start_new_session=True,
            )
        self.container_id = f"e2e://{self.popen.pid}"

    def signal(self, signum: int) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def remove(self) -> None:
        self.signal(signal.SIGKILL)


class RuncContainer(_Foreground):
    """The container through runc: `runc run` in the foreground (its exit status is the
    container's), signals through `runc kill`, and `runc delete` when it is done."""

    def __init__(self, name: str, bundle: Path, spec: Mapping[str, Any], log_path: Path) -> None:
        self.name, self.bundle, self.spec, self.log_path = name, bundle, spec, log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self.container_id = f"runc://{name}"
        self.image = self.image_id = ""

    def start(self) -> None:
        if (oci.STATE_DIR / self.name).exists():  # a previous run of this container
            oci.delete(self.name)
        oci.write_bundle(self.bundle, self.spec)
        oci.STATE_DIR.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                oci.runtime("run", "--bundle", str(self.bundle), self.name),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,
            )

    def signal(self, signum: int) -> None:
        if self.poll() is not None:
            return
        done = subprocess.run(
            oci.runtime("kill", self.name, signal.Signals(signum).name.removeprefix("SIG")),
            capture_output=True,
            timeout=10,
            check=False,
        )
        if done.returncode != 0 and self.popen is not None and signum == signal.SIGKILL:
            # Not created yet (or already gone): `runc run` itself takes it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def remove(self) -> None:
        """SIGKILL if it still runs; `runc run` then removes the container as it ends,
        so `runc delete` is only for what it could not remove."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)
        if (oci.STATE_DIR / self.name).exists():
            oci.delete(self.name)

    def init_pid(self) -> int | None:
        """The container's first process, as the host sees it (None when not running)."""
        found = oci.state(self.name)
        return int(found["pid"]) if found and found.get("status") == "running" else None


def runc_container(
    pod_image: PodImage,
    container: podspec.Container,
    *,
    name: str,
    env: Mapping[str, str],
    hostname: str,
    mounts: Sequence[volumes.Mount],
    bundle: Path,
    log_path: Path,
) -> RuncContainer:
    """The runc container of a pod's container: the pod's command, env, user, volumes
    and resources over the image's config."""
    binds = [oci.Bind(m.source, m.target, m.read_only) for m in mounts]
    for path in (Path("/etc/resolv.conf"), Path("/etc/hosts")):
        if path.is_file():  # as kubelet: the node's DNS set-up (the run's, in the sandbox)
            binds.append(oci.Bind(path, str(path), read_only=True))
    options = oci.pod_options(pod_image.config, container, binds, f"{CGROUP_PARENT}/{name}")
    spec = oci.runtime_spec(
        pod_image.config,
        pod_image.rootfs,
        container.argv,
        env=env,
        hostname=hostname,
        options=options,
    )
    made = RuncContainer(name, bundle, spec, log_path)
    made.image, made.image_id = pod_image.reference, pod_image.digest
    return made


def sweep(names: Sequence[str] | None = None) -> list[str]:
    """Delete the pod containers runc still lists whose cgroups hold no process (left by
    a run that was killed before it could; a run beside this one, in PID namespaces of
    its own, keeps its own), or those of `names`; then the empty cgroup parents. The
    names deleted."""
    listed = [str(c.get("id", "")) for c in oci.listed()]
    if names is None:
        names = [name for name in listed if name.startswith(ID_PREFIX) and not _alive(name)]
    else:
        names = [name for name in names if name in listed]
    for name in names:
        oci.delete(name)
    for parent in cgroup_parents():
        with contextlib.suppress(OSError):
            parent.rmdir()
    return names


def reserve_parent(cpu_millicores: int) -> list[Path]:
    """Make the containers' parent cgroup with CPU shares for the node's allocatable CPU,
    as kubelet makes `kubepods`: without it the parent weighs as one process, and a
    scale-up's containers share one process's CPU on a busy machine. The files written."""
    shares = max(oci.MIN_SHARES, cpu_millicores * 1024 // 1000)
    written = []
    for parent in cgroup_parents():
        if parent.parent.name == "cpu" or (parent.parent / "cpu.shares").is_file():
            target, value = parent / "cpu.shares", str(shares)
        elif (parent.parent / "cgroup.controllers").is_file() and "cpu" in (
            parent.parent / "cgroup.controllers"
        ).read_text().split():
            target, value = parent / "cpu.weight", str(1 + ((shares - 2) * 9999) // 262142)
        else:
            continue
        with contextlib.suppress(OSError):
            parent.mkdir(exist_ok=True)
            target.write_text(value)
            written.append(target)
    return written


def sweep_here() -> list[str]:
    """Delete the pod containers that run in this PID namespace (runc sees their pids
    here: this run's), and those left dead by any run; for the run's own end, after
    the node agent, so nothing it could not stop outlives the run. The names deleted."""
    names = [
        str(c["id"])
        for c in oci.listed()
        if str(c.get("id", "")).startswith(ID_PREFIX)
        and (c.get("status") in ("running", "created", "paused") or not _alive(str(c["id"])))
    ]
    threads = [threading.Thread(target=oci.delete, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sweep([])  # the empty cgroup parents
    return names


def _alive(name: str) -> bool:
    """Whether any cgroup of container `name` still holds a process (seen from any PID
    namespace, unlike the pid runc recorded)."""
    try:
        state = json.loads((oci.STATE_DIR / name / "state.json").read_text())
    except (OSError, ValueError):
        return False
    for path in (state.get("cgroup_paths") or {}).values():
        with contextlib.suppress(OSError):
            if Path(path, "cgroup.procs").read_text().strip():
                return True
    return False


def cgroup_parents() -> list[Path]:
    """Where runc puts the containers' cgroups: a relative cgroupsPath is taken below the
    cgroup of the process that runs runc, in each hierarchy."""
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            name = controller.removeprefix("name=") if controller else "unified"
            directory = Path("/sys/fs/cgroup") / name
            if not directory.is_dir():
                directory = Path("/sys/fs/cgroup")
            found.append(directory / path.lstrip("/") / CGROUP_PARENT)
    return found

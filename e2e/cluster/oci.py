"""Run a command of an OCI image with runc, the way the manifests run it in a pod.

The image comes as an OCI image layout (`buildah push ... oci:DIR:TAG`) and a rootfs
unpacked from it (`umoci unpack`). Each run gets a bundle of its own: a `config.json`
written here from the image's own config (user, environment, working directory), whose
root is the shared rootfs. `runtime_spec` is the pod's security context as the
manifests set it (no capabilities, no new privileges, the image's numeric user, a
read-only root, a tmpfs on /tmp for the emptyDir). There is no network namespace: the
container shares the host's, and the servers bind 127.0.0.1 only.

`python -m e2e.cluster.image --check` (tests/deploy/test_image.py) runs the image this way;
`make e2e` runs it through kubelet and containerd (`e2e.cluster.node`), and reads its pods'
cgroup limits with `cgroup_limits`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.child import Child

# crun 1.8 refuses a host whose cgroup v2 hierarchy has controllers while v1 is in use
# ("cgroups in hybrid mode not supported"); runc takes the same commands and runs there.
RUNTIME = "runc"
STATE_DIR = Path("/run/openclaw-e2e/runc")
TMPFS_SIZE = "64m"
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ImageConfig:
    """What a runtime takes from an image's config (`config` of the OCI image config)."""

    user: tuple[int, int]
    env: tuple[str, ...]
    cmd: tuple[str, ...]
    entrypoint: tuple[str, ...]
    working_dir: str


def _blob(layout: Path, digest: str) -> Any:
    algorithm, _, value = digest.partition(":")
    return json.loads((layout / "blobs" / algorithm / value).read_text())


def manifest_digest(layout: Path, tag: str) -> str:
    """The digest of the manifest tagged `tag` in the OCI layout at `layout`."""
    index = json.loads((layout / "index.json").read_text())
    named = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    if len(named) != 1:
        raise LookupError(f"{layout}: {len(named)} manifests tagged {tag!r}")
    return str(named[0]["digest"])


def read_image_config(layout: Path, tag: str) -> ImageConfig:
    """The config of the image tagged `tag` in the OCI layout at `layout`."""
    manifest = _blob(layout, manifest_digest(layout, tag))
    config = _blob(layout, manifest["config"]["digest"]).get("config", {})
    return ImageConfig(
        user=parse_user(config.get("User", "")),
        env=tuple(config.get("Env") or ()),
        cmd=tuple(config.get("Cmd") or ()),
        entrypoint=tuple(config.get("Entrypoint") or ()),
        working_dir=config.get("WorkingDir") or "/",
    )


def parse_user(user: str) -> tuple[int, int]:
    """A numeric `uid[:gid]` (what the image must carry: no /etc/passwd lookup here)."""
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise ValueError(f"the image's USER is not numeric uid:gid: {user!r}")
    return int(uid), int(gid or uid)


def _mount(destination: str, kind: str, *options: str) -> dict[str, Any]:
    return {"destination": destination, "type": kind, "source": kind, "options": list(options)}


def _mounts() -> list[dict[str, Any]]:
    return [
        _mount("/proc", "proc", "nosuid", "noexec", "nodev"),
        _mount("/dev", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        _mount("/dev/pts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666"),
        _mount("/dev/shm", "tmpfs", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
        _mount("/dev/mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        _mount("/sys", "sysfs", "nosuid", "noexec", "nodev", "ro"),
        _mount("/run", "tmpfs", "nosuid", "nodev", "mode=755", "size=1m"),
        # The manifests' emptyDir: Python's tempfile needs a writable /tmp.
        _mount("/tmp", "tmpfs", "nosuid", "nodev", "mode=1777", f"size={TMPFS_SIZE}"),
    ]


def runtime_spec(
    image: ImageConfig,
    rootfs: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    hostname: str = "rating-edge",
) -> dict[str, Any]:
    """An OCI runtime config that runs `args` (replacing the image's CMD) on `rootfs`, in
    the host's network namespace: as the image's user on a read-only root, with no
    capabilities and no new privileges, as the manifests' security context says."""
    uid, gid = image.user
    capabilities: dict[str, list[str]] = {
        key: [] for key in ("bounding", "effective", "permitted", "inheritable", "ambient")
    }
    linux: dict[str, Any] = {
        "namespaces": [{"type": kind} for kind in ("pid", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"],
    }
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid, "additionalGids": [gid]},
            "args": [*image.entrypoint, *args],
            "env": [*image.env, *(f"{key}={value}" for key, value in (env or {}).items())],
            "cwd": image.working_dir,
            "capabilities": capabilities,
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": hostname,
        "mounts": _mounts(),
        "linux": linux,
    }


def cgroup_limits(pid: int) -> dict[str, str]:
    """The CPU and memory limits of process `pid`'s cgroups, read from the host's files
    (v1: cpu.cfs_quota_us, cpu.cfs_period_us, cpu.shares, memory.limit_in_bytes; v2:
    cpu.max, cpu.weight, memory.max), by file name."""
    root = Path("/sys/fs/cgroup")
    limits: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        names = {
            "cpu": ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"),
            "memory": ("memory.limit_in_bytes",),
            "": ("cpu.max", "cpu.weight", "memory.max"),
        }
        for controller in controllers.split(","):
            directory = root / (controller if controller else "unified")
            if controller == "" and not directory.is_dir():
                directory = root  # a cgroup v2 host: the unified hierarchy is the root
            for name in names.get(controller, ()):
                file = directory / path.lstrip("/") / name
                if file.is_file():
                    limits[name] = file.read_text().strip()
    return limits


def write_bundle(directory: Path, spec: Mapping[str, Any]) -> Path:
    """A bundle directory holding `config.json` (its root points at the shared rootfs)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(spec, indent=2))
    return directory


def runtime(*args: str) -> list[str]:
    """A runtime command line with this module's own state directory."""
    binary = shutil.which(RUNTIME)
    if binary is None:
        raise FileNotFoundError(f"{RUNTIME} is not installed (Debian package {RUNTIME})")
    return [binary, "--root", str(STATE_DIR), *args]


def version() -> str:
    """The runtime and its version, as `runc --version` says: `runc 1.1.5+ds1`."""
    binary = shutil.which(RUNTIME)
    if binary is None:
        return f"{RUNTIME} (not installed)"
    first = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return " ".join(first.splitlines()[0].split()[::2]) if first else RUNTIME


def run_once(bundle: Path, name: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the bundle's command to its end; its output and exit code."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    try:
        return subprocess.run(
            runtime("run", "--bundle", str(bundle), name),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    finally:
        delete(name)


class Container:
    """A long-running container: `runc run` in the foreground as a `Child`, so the
    harness's waits see it exit; stopped through the runtime (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, bundle: Path, log_path: Path, ports: Mapping[str, int]) -> None:
        self.name = name
        self.child = Child(
            name, runtime("run", "--bundle", str(bundle), name), log_path, ports=ports
        )

    def start(self) -> Container:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.child.start()
        return self

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM to the container's init, wait, SIGKILL if need be; its exit code."""
        _kill(self.name, "TERM")
        deadline = time.monotonic() + timeout_s
        while self.child.running and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.child.running:
            _kill(self.name, "KILL")
            self.child.kill()
        delete(self.name)
        return self.child.returncode


def _kill(name: str, signal: str) -> None:
    subprocess.run(runtime("kill", name, signal), capture_output=True, timeout=10, check=False)


def delete(name: str) -> None:
    """Remove the container's state (killing it first if it still runs)."""
    subprocess.run(runtime("delete", "--force", name), capture_output=True, timeout=10, check=False)

"""Run a command of an OCI image with runc, the way the manifests run it in a pod.

The image comes as an OCI image layout (`buildah push ... oci:DIR:TAG`) and a rootfs
unpacked from it (`umoci unpack`). Each run gets a bundle of its own: a `config.json`
written here from the image's own config (user, environment, working directory), whose
root is the shared rootfs. `runtime_spec` is the pod's security context as the
manifests set it (no capabilities, no new privileges, the image's numeric user, a
read-only root, a tmpfs on /tmp for the emptyDir); `Options` carries what the node
agent takes from a pod instead (`pod_options`): its user, its volumes as bind mounts,
and its resources as cgroup limits, converted as kubelet converts them. There is no
network namespace: the container shares the host's, and the servers bind the pod's
address or 127.0.0.1 only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e import podspec
from harness.child import Child

# crun 1.8 refuses a host whose cgroup v2 hierarchy has controllers while v1 is in use
# ("cgroups in hybrid mode not supported"); runc takes the same commands and runs there.
RUNTIME = "runc"
STATE_DIR = Path("/run/openclaw-e2e/runc")
TMPFS_SIZE = "64m"
STOP_TIMEOUT_S = 15.0
# kubelet's conversions (pkg/kubelet/cm/helpers_linux.go): shares from the CPU request,
# CFS quota over a 100 ms period from the CPU limit.
CFS_PERIOD_US = 100_000
MIN_SHARES = 2
MIN_QUOTA_US = 1000
# What containerd gives a container that drops none (its default capability set).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)


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


@dataclass(frozen=True)
class Bind:
    """A directory or file of the host bind-mounted into the container."""

    source: Path
    destination: str
    read_only: bool = False


@dataclass(frozen=True)
class Options:
    """What a pod decides about its container; the defaults are the manifests' choices
    (`runtime_spec` without options is what tests/deploy/test_image.py runs)."""

    user: tuple[int, int] | None = None  # None: the image's
    read_only_root: bool = True
    no_new_privileges: bool = True
    capabilities: tuple[str, ...] = ()
    binds: tuple[Bind, ...] = ()
    tmp_tmpfs: bool = True  # a tmpfs on /tmp (off when a volume is mounted there)
    resources: dict[str, Any] = field(default_factory=dict)  # the spec's linux.resources
    cgroups_path: str | None = None


def _mount(destination: str, kind: str, *options: str) -> dict[str, Any]:
    return {"destination": destination, "type": kind, "source": kind, "options": list(options)}


def _mounts(options: Options) -> list[dict[str, Any]]:
    mounts = [
        _mount("/proc", "proc", "nosuid", "noexec", "nodev"),
        _mount("/dev", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        _mount("/dev/pts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666"),
        _mount("/dev/shm", "tmpfs", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
        _mount("/dev/mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        _mount("/sys", "sysfs", "nosuid", "noexec", "nodev", "ro"),
        # Mount points under /run (the service-account token's) are made in this tmpfs,
        # not in the shared rootfs.
        _mount("/run", "tmpfs", "nosuid", "nodev", "mode=755", "size=1m"),
    ]
    if options.tmp_tmpfs:  # the manifests' emptyDir: Python's tempfile needs a writable /tmp
        mounts.append(_mount("/tmp", "tmpfs", "nosuid", "nodev", "mode=1777", f"size={TMPFS_SIZE}"))
    for bind in options.binds:
        flags = ["rbind", "nosuid", "nodev", "ro" if bind.read_only else "rw"]
        mounts.append(
            {"destination": bind.destination, "type": "bind", "source": str(bind.source)}
            | {"options": flags}
        )
    return mounts


def runtime_spec(
    image: ImageConfig,
    rootfs: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    hostname: str = "rating-edge",
    options: Options | None = None,
) -> dict[str, Any]:
    """An OCI runtime config that runs `args` (replacing the image's CMD) on `rootfs`, in
    the host's network namespace: as the image's user on a read-only root with no
    capabilities unless `options` say otherwise."""
    options = options or Options()
    uid, gid = options.user or image.user
    capabilities: dict[str, list[str]] = {
        key: list(options.capabilities)
        for key in ("bounding", "effective", "permitted", "inheritable")
    } | {"ambient": []}
    linux: dict[str, Any] = {
        "namespaces": [{"type": kind} for kind in ("pid", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"],
    }
    if options.resources:
        linux["resources"] = options.resources
    if options.cgroups_path:
        linux["cgroupsPath"] = options.cgroups_path
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid, "additionalGids": [gid]},
            "args": [*image.entrypoint, *args],
            "env": [*image.env, *(f"{key}={value}" for key, value in (env or {}).items())],
            "cwd": image.working_dir,
            "capabilities": capabilities,
            "noNewPrivileges": options.no_new_privileges,
        },
        "root": {"path": str(rootfs), "readonly": options.read_only_root},
        "hostname": hostname,
        "mounts": _mounts(options),
        "linux": linux,
    }


# --- what a pod asks for ---------------------------------------------------------


def linux_resources(resources: podspec.Resources) -> dict[str, Any]:
    """`linux.resources` as kubelet sets them: CPU shares from the request (2 without
    one), a CFS quota from the limit, the memory limit. runc writes them to cgroup v1
    (cpu.shares, cpu.cfs_quota_us, memory.limit_in_bytes) or converts them for v2
    (cpu.weight, cpu.max, memory.max)."""
    request_m = resources.cpu_request_m
    shares = MIN_SHARES if not request_m else max(MIN_SHARES, request_m * 1024 // 1000)
    cpu: dict[str, int] = {"shares": shares}
    if resources.cpu_limit_m:
        quota = max(MIN_QUOTA_US, resources.cpu_limit_m * CFS_PERIOD_US // 1000)
        cpu |= {"quota": quota, "period": CFS_PERIOD_US}
    spec: dict[str, Any] = {"cpu": cpu}
    if resources.memory_limit_bytes:
        spec["memory"] = {"limit": resources.memory_limit_bytes}
    return spec


def capabilities(security: podspec.Security) -> tuple[str, ...]:
    """The runtime's default set, less `drop` (ALL: every one), plus `add`."""

    def named(names: Sequence[str]) -> set[str]:
        return {name if name.startswith("CAP_") else f"CAP_{name}" for name in names}

    drop = named(security.capabilities_drop)
    kept = () if "CAP_ALL" in drop else tuple(c for c in DEFAULT_CAPABILITIES if c not in drop)
    return kept + tuple(sorted(named(security.capabilities_add) - set(kept)))


def pod_options(
    image: ImageConfig, container: podspec.Container, binds: Sequence[Bind], cgroups_path: str
) -> Options:
    """The runtime options of a pod's container: its security context over the image's
    user, its volumes, its resources."""
    security = container.security
    uid = image.user[0] if security.run_as_user is None else security.run_as_user
    gid = image.user[1] if security.run_as_group is None else security.run_as_group
    return Options(
        user=(uid, gid),
        read_only_root=security.read_only_root,
        no_new_privileges=not security.allow_privilege_escalation,
        capabilities=capabilities(security),
        binds=tuple(binds),
        tmp_tmpfs=not any(bind.destination.rstrip("/") == "/tmp" for bind in binds),
        resources=linux_resources(container.resources),
        cgroups_path=cgroups_path,
    )


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


def state(name: str) -> dict[str, Any] | None:
    """`runc state` of container `name` (its pid, status, bundle), None if unknown."""
    done = subprocess.run(runtime("state", name), capture_output=True, text=True, check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def listed() -> list[dict[str, Any]]:
    """`runc list` in this module's state directory."""
    if not STATE_DIR.is_dir():
        return []
    done = subprocess.run(
        runtime("list", "--format", "json"), capture_output=True, text=True, check=False
    )
    return list(json.loads(done.stdout or "null") or []) if done.returncode == 0 else []


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

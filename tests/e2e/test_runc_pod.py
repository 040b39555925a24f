"""The manifests' rating-api pod as the node agent runs it through runc, from the built
image: the limits read back from the container's cgroup files on the host, its user,
its capabilities, its read-only root and its volumes, then SIGTERM through runc.

Needs root, runc and the image `python -m e2e.image` built for these sources (or the one
OPENCLAW_E2E_IMAGE_KEY names); skipped otherwise. The parts that need none of it (the
conversions, the spec) run everywhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import containers, image, oci, pod_images, podspec, volumes
from e2e.pod_start import overlay_pod, with_env
from harness.ready import free_port, http_ok

LOOPBACK = "127.0.0.1"


def rendered_pod(deployment: str) -> dict[str, Any]:
    """The pod the e2e overlay's Deployment `deployment` makes (kustomize render)."""
    return overlay_pod(deployment, name=f"{deployment}-test", namespace="e2e-test", uid="u-1")


# --- without the image -----------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (
            podspec.Resources(250, 1000, 128 * 2**20, 256 * 2**20),
            {"cpu": {"shares": 256, "quota": 100_000, "period": 100_000}}
            | {"memory": {"limit": 256 * 2**20}},
        ),
        (podspec.Resources(100, 500), {"cpu": {"shares": 102, "quota": 50_000, "period": 100_000}}),
        (podspec.Resources(), {"cpu": {"shares": 2}}),
        (podspec.Resources(1, 1), {"cpu": {"shares": 2, "quota": 1000, "period": 100_000}}),
    ],
    ids=["manifest-api", "half-cpu", "best-effort", "minimums"],
)
def test_resources_convert_as_kubelet_does(
    resources: podspec.Resources, expected: dict[str, Any]
) -> None:
    assert oci.linux_resources(resources) == expected


@pytest.mark.parametrize(
    ("drop", "add", "expected"),
    [
        (("ALL",), (), ()),
        (("ALL",), ("NET_BIND_SERVICE",), ("CAP_NET_BIND_SERVICE",)),
        ((), (), oci.DEFAULT_CAPABILITIES),
        (
            ("NET_RAW", "CAP_MKNOD"),
            (),
            tuple(c for c in oci.DEFAULT_CAPABILITIES if c not in ("CAP_NET_RAW", "CAP_MKNOD")),
        ),
    ],
    ids=["drop-all", "drop-all-add-one", "defaults", "drop-two"],
)
def test_capabilities(
    drop: tuple[str, ...], add: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    security = podspec.Security(capabilities_drop=drop, capabilities_add=add)
    assert oci.capabilities(security) == expected


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("openclaw/rating-edge:0.1.0", True),
        ("docker.io/openclaw/rating-edge", True),
        ("localhost/openclaw/rating-edge:777ace85fce30c03", True),
        ("openclaw/rating-edge@sha256:2a57", True),
        ("openclaw/rating-edge-debug:1", False),
        ("unused", False),
        ("python:3.11", False),
    ],
)
def test_which_pods_run_from_the_image(name: str, ours: bool) -> None:
    assert containers.runs_project_image(name) is ours


def test_the_manifests_pod_becomes_the_runtime_spec(tmp_path: Path) -> None:
    pod = rendered_pod("rating-api")
    container = podspec.container_of(pod, "10.244.0.9", LOOPBACK)
    assert containers.runs_project_image(container.image)
    rootfs = tmp_path / "rootfs"
    (rootfs / "tmp").mkdir(parents=True)
    mounts = volumes.prepare(None, pod, tmp_path, "10.244.0.9", LOOPBACK, rootfs=rootfs)  # type: ignore[arg-type]
    config = oci.ImageConfig((20, 20), ("PATH=/opt/venv/bin:/usr/bin",), ("rating-api",), (), "/")
    pod_image = containers.PodImage("localhost/x:1", "sha256:1", config, rootfs)
    made = containers.runc_container(
        pod_image,
        container,
        name="pod.e2e-test.rating-api-test",
        env={"A": "1"},
        hostname="rating-api-test",
        mounts=mounts,
        bundle=tmp_path / "bundle",
        log_path=tmp_path / "log",
    )
    spec = made.spec
    assert spec["process"]["user"]["uid"] == 10001, "runAsUser over the image's user"
    assert spec["process"]["user"]["gid"] == 10001
    assert spec["process"]["args"] == ["rating-api"]
    assert spec["process"]["noNewPrivileges"] is True
    assert all(not caps for caps in spec["process"]["capabilities"].values())
    assert spec["root"]["readonly"] is True
    assert spec["linux"]["resources"] == oci.linux_resources(container.resources)
    assert spec["linux"]["cgroupsPath"] == "openclaw-e2e/pod.e2e-test.rating-api-test"
    tmp = [m for m in spec["mounts"] if m["destination"] == "/tmp"]
    assert tmp == [
        {"destination": "/tmp", "type": "bind", "source": str(tmp_path / "volumes" / "tmp")}
        | {"options": ["rbind", "nosuid", "nodev", "rw"]}
    ], "the emptyDir, not a tmpfs of the runtime's"
    assert (tmp_path / "volumes" / "tmp").stat().st_mode & 0o7777 == 0o1777


# --- from the image, through runc ------------------------------------------------


@pytest.fixture(scope="module")
def pod_image() -> containers.PodImage:
    if os.geteuid() != 0 or shutil.which(oci.RUNTIME) is None:
        unavailable(f"running the image needs root and {oci.RUNTIME}")
    try:
        return containers.PodImage.load(image.current_key())
    except FileNotFoundError as error:
        unavailable(str(error))
        raise


def unavailable(reason: str) -> None:
    """Skip, or fail under `python -m e2e.image --check`, which built the image."""
    if os.environ.get("OPENCLAW_E2E_IMAGE_REQUIRED"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def started(pod_image: containers.PodImage, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The e2e overlay's rating-api pod, on loopback ports of its own, through runc."""
    ports = {"http": free_port(), "admin": free_port()}
    while ports["admin"] == ports["http"]:  # free_port may hand out the same port twice
        ports["admin"] = free_port()
    pod = with_env(
        rendered_pod("rating-api"),
        RATING_API_PORT=str(ports["http"]),
        RATING_API_ADMIN_PORT=str(ports["admin"]),
    )
    container = podspec.container_of(pod, LOOPBACK, LOOPBACK)
    mounts = volumes.prepare(None, pod, tmp_path, LOOPBACK, LOOPBACK, rootfs=pod_image.rootfs)  # type: ignore[arg-type]
    name = f"{containers.ID_PREFIX}test.{os.getpid()}"
    made = containers.runc_container(
        pod_image,
        container,
        name=name,
        env=dict(container.env),
        hostname="rating-api-test",
        mounts=mounts,
        bundle=tmp_path / "bundle",
        log_path=tmp_path / "container.log",
    )
    made.start()
    try:
        yield {"container": made, "ports": ports, "tmp": tmp_path / "volumes" / "tmp"} | {
            "log": tmp_path / "container.log"
        }
    finally:
        made.remove()
    assert oci.state(name) is None, "runc delete left the container"


def wait_ready(made: containers.RuncContainer, url: str, log: Path) -> None:
    """Until `url` answers 2xx; fails at once if the container exits first."""
    deadline = time.monotonic() + 60
    while not http_ok(url, None):
        assert made.poll() is None, f"the container exited ({made.poll()}): {log.read_text()}"
        assert time.monotonic() < deadline, f"no answer from {url}: {log.read_text()}"
        time.sleep(0.1)


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_the_pod_runs_with_its_limits_user_and_volumes(started: dict[str, Any]) -> None:
    made: containers.RuncContainer = started["container"]
    wait_ready(made, f"http://{LOOPBACK}:{started['ports']['http']}/readyz", started["log"])
    pid = made.init_pid()
    assert pid is not None
    limits = oci.cgroup_limits(pid)
    if "cpu.cfs_quota_us" in limits:  # cgroup v1 (this host: v1 beside an empty v2)
        assert limits["cpu.cfs_quota_us"] == "100000"  # limits.cpu 1
        assert limits["cpu.cfs_period_us"] == "100000"
        assert limits["cpu.shares"] == "256"  # requests.cpu 250m
        assert limits["memory.limit_in_bytes"] == str(256 * 2**20)  # limits.memory 256Mi
    else:
        assert limits["cpu.max"] == "100000 100000"
        assert limits["memory.max"] == str(256 * 2**20)
    status = _status(pid)
    assert status["Uid"].split() == ["10001"] * 4
    assert status["Gid"].split() == ["10001"] * 4
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1"
    root = Path(f"/proc/{pid}/root")
    mounts = Path(f"/proc/{pid}/mounts").read_text().splitlines()
    (root_mount,) = [m.split() for m in mounts if m.split()[1] == "/"]
    assert "ro" in root_mount[3].split(","), root_mount
    # The emptyDir is the pod's directory: a file the container writes shows up there.
    made_file = started["tmp"] / "from-host"
    made_file.write_text("x")
    assert (root / "tmp" / "from-host").read_text() == "x"


def test_sigterm_through_runc_stops_it_cleanly(started: dict[str, Any]) -> None:
    made: containers.RuncContainer = started["container"]
    wait_ready(made, f"http://{LOOPBACK}:{started['ports']['http']}/readyz", started["log"])
    assert made.name not in containers.sweep(), "a running container is not swept"
    made.signal(signal.SIGTERM)
    assert made.wait(20) == 0, started["log"].read_text()
    assert oci.state(made.name) is None, "runc run removes what it ran"


def test_a_container_left_by_a_killed_run_is_swept(started: dict[str, Any]) -> None:
    made: containers.RuncContainer = started["container"]
    wait_ready(made, f"http://{LOOPBACK}:{started['ports']['http']}/readyz", started["log"])
    pid = made.init_pid()
    assert made.popen is not None and pid is not None
    # runc and its container killed, as when the run's PID namespace ends.
    os.killpg(made.popen.pid, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    made.wait(20)
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    left = oci.state(made.name)
    assert left is not None and left["status"] == "stopped"
    assert made.name in containers.sweep()
    assert oci.state(made.name) is None


def test_the_summary_reads_the_running_containers_limits(started: dict[str, Any]) -> None:
    made: containers.RuncContainer = started["container"]
    wait_ready(made, f"http://{LOOPBACK}:{started['ports']['http']}/readyz", started["log"])
    sample = pod_images.cgroup_sample("test")
    assert made.name in sample
    assert sample[made.name] == oci.cgroup_limits(made.init_pid() or 0)
    assert {"cpu.cfs_quota_us", "memory.limit_in_bytes"} <= set(sample[made.name]) or {
        "cpu.max",
        "memory.max",
    } <= set(sample[made.name])


def test_the_runs_end_deletes_what_runs_in_its_pid_namespace(started: dict[str, Any]) -> None:
    made: containers.RuncContainer = started["container"]
    wait_ready(made, f"http://{LOOPBACK}:{started['ports']['http']}/readyz", started["log"])
    assert made.name in containers.sweep_here()
    assert oci.state(made.name) is None
    assert made.wait(20) is not None, "deleting it with --force killed it"

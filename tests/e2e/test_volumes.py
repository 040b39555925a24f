"""Volume mounts as the node agent makes them: the wrapper script and its limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from e2e import podspec, volumes


def test_no_mounts_leave_the_command_alone() -> None:
    assert volumes.wrap(["rating-api", "--port", "1"], []) == ["rating-api", "--port", "1"]


def test_mounts_run_in_a_mount_namespace_with_a_fresh_run() -> None:
    mounts = [
        volumes.Mount(Path("/tmp/state/p/volumes/tmp"), "/tmp"),
        volumes.Mount(Path("/tmp/state/p/volumes/tok en"), "/var/run/secrets/x"),
    ]
    argv = volumes.wrap(["rating-scaler"], mounts)
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    steps = argv[argv.index("-c") + 1].split(" && ")
    assert steps[0] == "mount -t tmpfs -o mode=755 pod-run /run"
    # Both sources are staged before /tmp is covered, then moved to their targets.
    staged = steps.index("mount --bind '/tmp/state/p/volumes/tok en' /run/.volumes/1")
    assert staged < steps.index("mount --bind /run/.volumes/0 /tmp")
    assert "mount --bind /run/.volumes/1 /var/run/secrets/x" in steps
    assert argv[-2:] == ["pod", "rating-scaler"]


@pytest.mark.parametrize(
    "target",
    ["/var/run/secrets/kubernetes.io/serviceaccount", "/run/x", "EXISTING"],
    ids=["var-run", "run", "existing-dir"],
)
def test_mount_paths_under_run_or_existing_are_taken(target: str, tmp_path: Path) -> None:
    if target == "EXISTING":  # not /tmp itself: a checkout under /tmp keeps it unmounted
        existing = tmp_path / "existing"
        existing.mkdir()
        target = str(existing)
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {
            "volumes": [{"name": "v", "emptyDir": {}}],
            "containers": [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": target}]}],
        },
    }
    mounts = volumes.prepare(None, pod, tmp_path, "10.244.0.2", "127.0.0.1")  # type: ignore[arg-type]
    assert [m.target for m in mounts] == [target]
    assert (tmp_path / "volumes" / "v").is_dir()


def test_a_missing_mount_path_outside_run_is_refused(tmp_path: Path) -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {
            "volumes": [{"name": "v", "emptyDir": {}}],
            "containers": [
                {"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/nonexistent/x"}]}
            ],
        },
    }
    with pytest.raises(podspec.Unsupported, match="/nonexistent/x"):
        volumes.prepare(None, pod, tmp_path, "10.244.0.2", "127.0.0.1")  # type: ignore[arg-type]


def test_an_empty_dir_over_the_programs_is_left_out(tmp_path: Path) -> None:
    covering = str(Path(volumes.__file__).resolve().parent.parent.parent)
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {
            "volumes": [{"name": "v", "emptyDir": {}}],
            "containers": [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": covering}]}],
        },
    }
    assert volumes.prepare(None, pod, tmp_path, "10.244.0.2", "127.0.0.1") == []  # type: ignore[arg-type]


def test_for_an_image_paths_are_checked_in_its_rootfs_and_only_empty_dirs_are_writable(
    tmp_path: Path,
) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "tmp").mkdir(parents=True)
    names = {
        "downwardAPI": {
            "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
        }
    }
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                {"name": "info", "projected": {"sources": [names]}},
            ],
            "containers": [
                {
                    "name": "c",
                    "volumeMounts": [
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "info", "mountPath": "/var/run/info"},
                    ],
                }
            ],
        },
    }
    mounts = volumes.prepare(None, pod, tmp_path, "10.244.0.2", "127.0.0.1", rootfs=rootfs)  # type: ignore[arg-type]
    assert [(m.target, m.read_only) for m in mounts] == [("/tmp", False), ("/var/run/info", True)]
    assert (tmp_path / "volumes" / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (tmp_path / "volumes" / "info" / "namespace").read_text() == "ns"
    pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] = "/opt/nowhere"
    with pytest.raises(podspec.Unsupported, match="/opt/nowhere"):
        volumes.prepare(None, pod, tmp_path, "10.244.0.2", "127.0.0.1", rootfs=rootfs)  # type: ignore[arg-type]

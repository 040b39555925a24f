"""The node's pure parts: the image archives `ctr images import` reads (checked
against the OCI image layout's rules: every blob named by its digest, the index naming
the image), and what the run checks of the pods' images."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from e2e import pod_burst
from e2e.cluster import node, pod_images


def read_archive(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}  # type: ignore[union-attr]


def blob(files: dict[str, bytes], digest: str) -> bytes:
    data = files[f"blobs/sha256/{digest.removeprefix('sha256:')}"]
    assert f"sha256:{hashlib.sha256(data).hexdigest()}" == digest, "a blob is named by its digest"
    return data


def test_the_pause_archive_is_one_layer_holding_the_program(tmp_path: Path) -> None:
    program = tmp_path / "pause"
    program.write_bytes(b"\x7fELF pretend")
    out = io.BytesIO()
    node.pause_archive(out, program)
    files = read_archive(out.getvalue())
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == node.PAUSE_IMAGE
    manifest = json.loads(blob(files, entry["digest"]))
    assert entry["size"] == len(blob(files, entry["digest"]))
    config = json.loads(blob(files, manifest["config"]["digest"]))
    assert config["config"]["Entrypoint"] == ["/pause"]
    (layer,) = manifest["layers"]
    assert config["rootfs"]["diff_ids"] == [layer["digest"]]
    inner = read_archive(blob(files, layer["digest"]))
    assert inner == {"pause": b"\x7fELF pretend"}


def write_layout(root: Path) -> dict[str, str]:
    """A layout with two images, tagged `one` and `two`."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    digests = {}
    manifests = []
    for tag in ("one", "two"):
        data = json.dumps({"schemaVersion": 2, "tag": tag}).encode()
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        digests[tag] = f"sha256:{digest}"
        annotations = {"org.opencontainers.image.ref.name": tag}
        manifests.append(
            {"digest": f"sha256:{digest}", "size": len(data)} | {"annotations": annotations}
        )
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return digests


def test_a_layouts_image_is_archived_under_the_name_the_manifests_use(tmp_path: Path) -> None:
    digests = write_layout(tmp_path)
    out = io.BytesIO()
    digest = node.layout_archive(out, tmp_path, "two", "docker.io/openclaw/rating-edge:0.1.0")
    assert digest == digests["two"]
    files = read_archive(out.getvalue())
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["digest"] == digests["two"]
    assert entry["annotations"] == {
        "io.containerd.image.name": "docker.io/openclaw/rating-edge:0.1.0",
        "org.opencontainers.image.ref.name": "0.1.0",
    }
    assert json.loads(blob(files, digests["two"]))["tag"] == "two"


def test_a_tag_the_layout_lacks_is_named(tmp_path: Path) -> None:
    write_layout(tmp_path)
    with pytest.raises(LookupError, match="no image tagged three in"):
        node.layout_archive(io.BytesIO(), tmp_path, "three", "x:1")


def test_the_image_reference_is_the_charts_app_version() -> None:
    assert node.image_reference() == "docker.io/openclaw/rating-edge:0.1.0"


def summary(refs: list[str], limits: dict[str, Any]) -> dict[str, Any]:
    return {
        "imported_as": "docker.io/openclaw/rating-edge:0.1.0",
        "image_id": "sha256:built",
        "fleets": {"direct": {"pods": {"rating-api": refs}, "cgroup_limits": limits}},
    }


def test_pods_of_the_built_image_with_limits_read_are_no_problem() -> None:
    good = ["docker.io/openclaw/rating-edge:0.1.0@sha256:built"]
    assert pod_images.image_problems(summary(good, {"pod-a": {"cpu.shares": "25"}})) == []


def test_another_image_or_no_limits_read_are_problems() -> None:
    other = ["docker.io/openclaw/rating-edge:0.1.0@sha256:other"]
    problems = pod_images.image_problems(summary(other, {}))
    assert problems == [
        "direct: rating-api ran ['docker.io/openclaw/rating-edge:0.1.0@sha256:other'], "
        "not docker.io/openclaw/rating-edge:0.1.0@sha256:built",
        "direct: no running container's cgroup limits could be read",
    ]
    assert pod_images.image_problems({"error": "no image built for this key"}) == [
        "image: no image built for this key"
    ]


def test_the_burst_starts_the_e2e_overlays_rating_api_pod() -> None:
    deployment = pod_burst.overlay_deployment()
    assert deployment["metadata"] == {"name": "rating-api", "namespace": "default"}
    assert deployment["spec"]["replicas"] == 0
    spec = deployment["spec"]["template"]["spec"]
    assert "serviceAccountName" not in spec
    (container,) = spec["containers"]
    assert container["image"] == "openclaw/rating-edge:0.1.0"
    assert container["resources"]["requests"]["cpu"] == "25m"
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)


@pytest.mark.parametrize("flags", [["--pods", "0"], ["--rounds", "0"]])
def test_the_burst_refuses_zero_pods_or_rounds(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        pod_burst.main(flags)
    assert exited.value.code == 2
    assert "--pods and --rounds must be at least 1" in capsys.readouterr().err

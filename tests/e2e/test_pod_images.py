"""summary.json's `image` key: the reference, the manifest digest read from the OCI
layout, the runtime, and what the pods' statuses report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import image, oci, pod_images


def write_layout(root: Path, tag: str) -> str:
    """A minimal OCI layout with one manifest tagged `tag`; the manifest's digest."""
    blobs = root / "oci" / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(content: dict[str, Any]) -> str:
        data = json.dumps(content).encode()
        value = hashlib.sha256(data).hexdigest()
        (blobs / value).write_bytes(data)
        return f"sha256:{value}"

    config = blob({"config": {"User": "10001:10001", "Cmd": ["rating-api"]}})
    manifest = blob({"schemaVersion": 2, "config": {"digest": config}, "layers": []})
    refs = {"org.opencontainers.image.ref.name": tag}
    index = {"schemaVersion": 2, "manifests": [{"digest": manifest, "annotations": refs}]}
    (root / "oci" / "index.json").write_text(json.dumps(index))
    return manifest


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An image record in a cache of its own, its layout's digest beside it."""
    monkeypatch.setenv("OPENCLAW_E2E_CACHE", str(tmp_path))
    key = "0123456789abcdef"
    work = image.image_dir(key)
    digest = write_layout(work, image.LAYOUT_TAG)
    image.rootfs(key).mkdir(parents=True)
    record = {
        "key": key,
        "image": f"{image.IMAGE}:{key}",
        "image_id": "sha256:abc",
        "digest": "sha256:what-the-build-said",
        "layout": str(image.layout(key)),
        "layout_tag": image.LAYOUT_TAG,
        "rootfs": str(image.rootfs(key)),
    }
    (work / "image.json").write_text(json.dumps(record))
    return {"key": key, "digest": digest}


def test_image_keys_name_the_image_and_its_layouts_digest(cached: dict[str, Any]) -> None:
    keys = pod_images.image_keys(cached["key"])
    assert keys["reference"] == f"{image.IMAGE}:{cached['key']}"
    assert keys["digest"] == cached["digest"], "read from the layout, not the record"
    assert keys["layout"].endswith(f"/oci:{image.LAYOUT_TAG}")
    assert keys["runtime"] == oci.version()
    assert keys["runtime"].startswith(f"{oci.RUNTIME} ")


def test_no_image_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENCLAW_E2E_CACHE", str(tmp_path))
    assert pod_images.image_keys("ffff")["error"] == "no image built for this key"


def test_the_built_image_digest_matches_its_layout() -> None:
    record = image.read_record(image.current_key())
    if record is None:
        pytest.skip("no image built for these sources: run python -m e2e.cluster.image")
    keys = pod_images.image_keys(record["key"])
    assert keys["digest"] == record["digest"]
    assert keys["digest"] == oci.manifest_digest(Path(record["layout"]), record["layout_tag"])


def test_reported_lists_each_containers_images() -> None:
    def pod(name: str, image_ref: str, image_id: str) -> dict[str, Any]:
        status = {"name": name, "image": image_ref, "imageID": image_id}
        return {"status": {"containerStatuses": [status]}}

    pods = [
        pod("rating-api", "localhost/openclaw/rating-edge:k", "sha256:1"),
        pod("rating-api", "localhost/openclaw/rating-edge:k", "sha256:1"),
        pod("web", "local-process", ""),
        {"status": {}},
    ]
    assert pod_images.reported(pods) == {
        "rating-api": ["localhost/openclaw/rating-edge:k@sha256:1"],
        "web": ["local-process@"],
    }

"""Build the project's container image from its Dockerfile without a Docker engine.

    python -m e2e.cluster.image            # build what is missing, print the image's digest
    python -m e2e.cluster.image --check    # the same, then run each command from the image
                                   # (tests/deploy/test_image.py)

The base is made here from Debian's packages: `mmdebstrap` writes a minimal bookworm
with python3, python3-venv and libstdc++6, which buildah takes in as a local image
(`from scratch`, the rootfs added, committed). `buildah bud` then builds the Dockerfile
on it through its `PYTHON_IMAGE` argument, with the host's network (pip needs the
package index) and the host's CA bundle mounted for the RUN steps only (a TLS proxy
between this machine and the index is then trusted; nothing of it lands in a layer).
The result is pushed to an OCI image layout, and `umoci` unpacks that layout into the
rootfs that `e2e/cluster/oci.py` runs with runc.

Everything lives under `${OPENCLAW_E2E_CACHE:-/var/cache/openclaw-e2e}/image/`: the
containers storage (`storage/`), and per source tree `<key>/` with `oci/`, `bundle/rootfs`,
`build.log` and `image.json` (key, image id, digest, sizes, build seconds). The key hashes
the Dockerfile, .dockerignore, the build context (pyproject.toml, README.md, common/,
api/, scaler/, activator/) and the base's recipe, so a second run with the same sources
reuses the image.
pip resolves the dependencies when the image is built: the key does not pin them.
Builds run under `nice -n 19`. Needs root.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from e2e.cluster.oci import RUNTIME

ROOT = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# grpcio's wheel links libstdc++, which the python:slim images carry (apt needs it);
# the essential variant has no apt, so it is named here.
BASE_PACKAGES = ("python3", "python3-venv", "libstdc++6")
# Documentation and translations are no use in a container and a third of its size.
BASE_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
IMAGE = "localhost/openclaw/rating-edge"
LAYOUT_TAG = "rating-edge"
# What .dockerignore lets into the build context, and the files that shape the build.
CONTEXT = ("pyproject.toml", "README.md", "common", "api", "scaler", "activator")
RECIPE_FILES = ("Dockerfile", ".dockerignore")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RUNROOT = Path("/run/openclaw-e2e/storage")
NICE = ("nice", "-n", "19")
REQUIRED_TOOLS = ("buildah", "mmdebstrap", "umoci", RUNTIME)
# Names the image a run uses (`python -m e2e` sets it once it has the image), so an
# edit to the sources during the run does not make it look for another.
KEY_ENV = "OPENCLAW_E2E_IMAGE_KEY"
# Images kept besides the newest: a run still using the one before keeps its rootfs.
KEEP_OLDER = 1


class BuildError(RuntimeError):
    """A build step failed; the text names it and ends with the tail of its log."""


def cache_dir() -> Path:
    return Path(os.environ.get("OPENCLAW_E2E_CACHE", "/var/cache/openclaw-e2e")) / "image"


def say(text: str) -> None:
    print(text, flush=True)


# --- keys ----------------------------------------------------------------------


def base_recipe() -> dict[str, Any]:
    return {
        "suite": SUITE,
        "mirror": MIRROR,
        "packages": list(BASE_PACKAGES),
        "excludes": list(BASE_EXCLUDES),
        "env": BASE_ENV,
    }


def base_key() -> str:
    return hashlib.sha256(json.dumps(base_recipe(), sort_keys=True).encode()).hexdigest()[:16]


def _context_files(root: Path) -> Iterator[Path]:
    for name in (*RECIPE_FILES, *CONTEXT):
        path = root / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
            )


def image_key(root: Path = ROOT) -> str:
    """A hash of everything the image is built from (but the dependencies pip resolves)."""
    digest = hashlib.sha256(f"base {base_key()}\n".encode())
    for path in _context_files(root):
        digest.update(f"{path.relative_to(root).as_posix()}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def current_key() -> str:
    """The image this process works with: the one KEY_ENV names, else these sources'."""
    return os.environ.get(KEY_ENV) or image_key()


def image_dir(key: str) -> Path:
    return cache_dir() / key


def rootfs(key: str) -> Path:
    return image_dir(key) / "bundle" / "rootfs"


def layout(key: str) -> Path:
    return image_dir(key) / "oci"


def read_record(key: str) -> dict[str, Any] | None:
    """The record of the image built for `key`, if it was built completely."""
    path = image_dir(key) / "image.json"
    if not path.is_file() or not rootfs(key).is_dir():
        return None
    record: dict[str, Any] = json.loads(path.read_text())
    return record if record.get("key") == key else None


# --- commands --------------------------------------------------------------------


def buildah(*args: str) -> list[str]:
    """buildah on the cache's own containers storage (overlay, falling back to vfs)."""
    storage = ["--root", str(cache_dir() / "storage"), "--runroot", str(RUNROOT)]
    driver = os.environ.get("OPENCLAW_E2E_STORAGE_DRIVER")
    return ["buildah", *storage, *(["--storage-driver", driver] if driver else []), *args]


def run(argv: Sequence[str], log: Path, what: str) -> str:
    """Run `argv`, its output appended to `log`; its stdout, or BuildError with the tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=out, text=True
        )
        out.write(result.stdout)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BuildError(f"{what} failed (exit {result.returncode}); {log}:\n{tail}")
    return result.stdout


def local_image_id(name: str) -> str | None:
    result = subprocess.run(
        buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", name),
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or None if result.returncode == 0 else None


# --- the base --------------------------------------------------------------------


def base_name() -> str:
    return f"localhost/openclaw/python-base:{base_key()}"


def build_base(log: Path) -> float:
    """mmdebstrap a minimal Debian with python3 + venv, commit it as `base_name()`."""
    started = time.monotonic()
    work = cache_dir() / "base"
    work.mkdir(parents=True, exist_ok=True)
    tarball = work / f"rootfs-{base_key()}.tar"
    excludes = [f"--dpkgopt=path-exclude={pattern}" for pattern in BASE_EXCLUDES]
    include = f"--include={','.join(BASE_PACKAGES)}"
    mmdebstrap = ["mmdebstrap", "--variant=essential", include, *excludes, "--format=tar"]
    run([*NICE, *mmdebstrap, SUITE, str(tarball), MIRROR], log, "mmdebstrap")
    try:
        container = run(buildah("from", "scratch"), log, "buildah from scratch").strip()
        run(buildah("add", container, str(tarball), "/"), log, "buildah add (the rootfs)")
        env = [arg for key, value in BASE_ENV.items() for arg in ("--env", f"{key}={value}")]
        run(buildah("config", *env, "--cmd", "python3", container), log, "buildah config")
        run(buildah("commit", "--rm", container, base_name()), log, "buildah commit (the base)")
    finally:
        tarball.unlink(missing_ok=True)
    return time.monotonic() - started


# --- the image -------------------------------------------------------------------


def _build_mounts(work: Path) -> list[str]:
    """The host's CA bundle and a pip.conf naming it, for the RUN steps only."""
    if not HOST_CA_BUNDLE.is_file():
        return []
    pip_conf = work / "pip.conf"
    pip_conf.write_text(f"[global]\ncert = {HOST_CA_BUNDLE}\n")
    return [
        f"--volume={HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro",
        f"--volume={pip_conf}:/etc/pip.conf:ro",
    ]


def build_image(key: str, log: Path) -> float:
    """`buildah bud` of the Dockerfile on the local base, tagged `IMAGE:key`."""
    started = time.monotonic()
    work = image_dir(key)
    bud = ["bud", "--runtime", RUNTIME, "--pull=never", "--network", "host"]
    bud += [f"--build-arg=PYTHON_IMAGE={base_name()}", *_build_mounts(work)]
    bud += ["--iidfile", str(work / "image-id"), "--tag", f"{IMAGE}:{key}", str(ROOT)]
    run([*NICE, *buildah(*bud)], log, "buildah bud")
    return time.monotonic() - started


def export_image(key: str, log: Path) -> str:
    """Push the image to an OCI layout and unpack its rootfs; the manifest's digest."""
    work = image_dir(key)
    shutil.rmtree(layout(key), ignore_errors=True)
    shutil.rmtree(work / "bundle", ignore_errors=True)
    digest_file = work / "digest"
    target = f"oci:{layout(key)}:{LAYOUT_TAG}"
    push = buildah("push", "--digestfile", str(digest_file), f"{IMAGE}:{key}", target)
    run(push, log, "buildah push (OCI layout)")
    unpack = ["umoci", "unpack", "--image", f"{layout(key)}:{LAYOUT_TAG}", str(work / "bundle")]
    run([*NICE, *unpack], log, "umoci unpack")
    return digest_file.read_text().strip()


def _size_bytes(key: str) -> int:
    """The image's size as buildah reports it (its layers, uncompressed)."""
    out = subprocess.run(
        buildah("inspect", "--type", "image", f"{IMAGE}:{key}"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    manifest = json.loads(json.loads(out).get("Manifest") or "{}")
    return sum(int(layer["size"]) for layer in manifest.get("layers", []))


def _tree_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build(key: str, *, rebuild: bool = False) -> dict[str, Any]:
    """The image for `key`: the cached one, or built now. Its record."""
    record = None if rebuild else read_record(key)
    if record is not None:
        return record
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise BuildError(
            f"missing tools: {', '.join(missing)} (apt-get install {' '.join(missing)})"
        )
    work = image_dir(key)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "build.log"
    say(f"image {key}: building (nice 19); log {log}")
    base_seconds = 0.0
    if rebuild or local_image_id(base_name()) is None:
        say(f"  base {base_name()}: mmdebstrap {SUITE} + {' '.join(BASE_PACKAGES)}")
        base_seconds = build_base(log)
    say("  buildah bud")
    bud_seconds = build_image(key, log)
    say("  OCI layout + rootfs")
    started = time.monotonic()
    digest = export_image(key, log)
    export_seconds = time.monotonic() - started
    record = {
        "key": key,
        "image": f"{IMAGE}:{key}",
        "image_id": "sha256:" + (work / "image-id").read_text().strip().removeprefix("sha256:"),
        "digest": digest,
        "size_bytes": _size_bytes(key),
        "rootfs_bytes": _tree_bytes(rootfs(key)),
        "base": {"image": base_name(), "image_id": f"sha256:{local_image_id(base_name())}"},
        "base_seconds": round(base_seconds, 1),
        "bud_seconds": round(bud_seconds, 1),
        "export_seconds": round(export_seconds, 1),
        "layout": str(layout(key)),
        "layout_tag": LAYOUT_TAG,
        "rootfs": str(rootfs(key)),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (work / "image.json").write_text(json.dumps(record, indent=2) + "\n")
    _forget_others(key)
    return record


def _forget_others(key: str) -> None:
    """Drop the images of other source trees but the newest KEEP_OLDER (a run may still
    run pods from it): one rootfs is a few hundred MB."""
    others = [
        other
        for other in cache_dir().iterdir()
        if other.is_dir() and other.name not in (key, "storage", "base")
    ]
    others.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    for other in others[KEEP_OLDER:]:
        subprocess.run(buildah("rmi", f"{IMAGE}:{other.name}"), capture_output=True)
        shutil.rmtree(other, ignore_errors=True)


# --- the command line ------------------------------------------------------------


def ensure() -> dict[str, Any]:
    """The image for these sources, built when missing (BuildError if it cannot be)."""
    return build(image_key())


def check(key: str) -> int:
    """Run each command from the image of `key` (tests/deploy/test_image.py, which then
    fails rather than skips when it cannot run them). Pods run from it in `make e2e`."""
    env = {**os.environ, "OPENCLAW_E2E_IMAGE_REQUIRED": "1", KEY_ENV: key}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    return subprocess.run([*argv, "tests/deploy/test_image.py"], cwd=ROOT, env=env).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m e2e.cluster.image", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="then run each command from it")
    parser.add_argument("--rebuild", action="store_true", help="build even if cached (base too)")
    args = parser.parse_args(argv)
    key = image_key()
    try:
        record = build(key, rebuild=args.rebuild)
    except BuildError as exc:
        say(f"image {key}: {exc}")
        return 1
    say(f"image {record['image']} {record['digest']} ({record['size_bytes'] / 1e6:.0f} MB)")
    if image_key() != key:
        say("  the sources changed while it was built: the next run builds again")
    return check(key) if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
